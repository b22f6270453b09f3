package main

import (
	"os"

	"github.com/sirupsen/logrus"
)

// compose-go reports some findings (an unset variable, an obsolete `version:`)
// through logrus; show them as tend's own warnings rather than as log lines.
func init() {
	logrus.SetOutput(os.Stderr)
	logrus.SetLevel(logrus.WarnLevel)
	logrus.SetFormatter(warningFormatter{})
}

type warningFormatter struct{}

func (warningFormatter) Format(e *logrus.Entry) ([]byte, error) {
	return []byte("warning: " + e.Message + "\n"), nil
}
