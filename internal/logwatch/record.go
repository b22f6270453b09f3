package logwatch

import "bytes"

// recordMode is what kind of multi-line record the current one is, when
// that changes which lines continue it.
type recordMode uint8

const (
	plainRecord recordMode = iota
	goPanic                // after a line starting "panic: " or "fatal error: "
	pyTraceback            // after "Traceback (most recent call last):", until its exception line
	pyDone                 // just after that exception line
)

// records splits a stream of lines into records: a record is a line that
// does not continue the one before, with the continuation lines that follow
// it. The rules are in doc.go; keep the two in step.
type records struct {
	started bool
	mode    recordMode
}

// continues reports whether line continues the current record; when it does
// not, line starts a new one.
func (r *records) continues(line []byte) bool {
	traceback := bytes.HasPrefix(line, pyTracebackStart)
	cont := false
	if r.started {
		switch r.mode {
		case goPanic:
			cont = goContinuation(line) || continuation(line)
		case pyTraceback:
			cont = true
		case pyDone:
			cont = continuation(line) && !traceback
		default:
			cont = continuation(line)
		}
	}
	r.started = true
	switch {
	case traceback:
		r.mode = pyTraceback
	case r.mode == pyTraceback && !continuation(line):
		r.mode = pyDone // the exception line ("ValueError: bad") closes the traceback
	case !cont:
		r.mode = startMode(line)
	case r.mode == pyDone:
		r.mode = plainRecord
	}
	return cont
}

// end makes the next line start a new record.
func (r *records) end() { *r = records{} }

func startMode(line []byte) recordMode {
	if bytes.HasPrefix(line, []byte("panic: ")) || bytes.HasPrefix(line, []byte("fatal error: ")) {
		return goPanic
	}
	return plainRecord
}

var pyTracebackStart = []byte("Traceback (most recent call last):")

// continuationPrefixes continue any record: Java's frames and causes, and
// Python's tracebacks and the lines that chain them.
var continuationPrefixes = [][]byte{
	[]byte("at "),
	[]byte("Caused by"),
	[]byte("..."),
	pyTracebackStart,
	[]byte(`File "`),
	[]byte("During handling of the above exception"),
	[]byte("The above exception was the direct cause"),
}

// continuation reports whether line continues any record: it is blank,
// starts with white space, or starts with one of continuationPrefixes.
func continuation(line []byte) bool {
	if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
		return true
	}
	for _, p := range continuationPrefixes {
		if bytes.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// goPrefixes continue a Go panic or fatal error: its goroutine dump.
var goPrefixes = [][]byte{
	[]byte("goroutine "),
	[]byte("created by "),
	[]byte("[signal "),
	[]byte("runtime stack:"),
	[]byte("..."),
}

// goContinuation reports whether line continues a Go panic: it is blank,
// starts with white space or one of goPrefixes, or is a frame's function
// line, such as "main.(*T).run(0xc000010000, {0x4b2e60, 0x5})": it ends
// with ")" and has no blank before its first "(".
func goContinuation(line []byte) bool {
	if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
		return true
	}
	for _, p := range goPrefixes {
		if bytes.HasPrefix(line, p) {
			return true
		}
	}
	i := bytes.IndexByte(line, '(')
	return i > 0 && line[len(line)-1] == ')' && bytes.IndexAny(line[:i], " \t") < 0
}
