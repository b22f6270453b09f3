package shim

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The test binary doubles as the replica's command: with SHIM_TEST_EXIT set it
// appends a line to SHIM_TEST_LOG and exits with that code.
func TestMain(m *testing.M) {
	if code := os.Getenv("SHIM_TEST_EXIT"); code != "" {
		f, _ := os.OpenFile(os.Getenv("SHIM_TEST_LOG"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		f.WriteString("ran\n")
		f.Close()
		n, _ := strconv.Atoi(code)
		os.Exit(n)
	}
	os.Exit(m.Run())
}

func command(t *testing.T, code int) (argv []string, runs func() int) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "runs")
	t.Setenv("SHIM_TEST_EXIT", strconv.Itoa(code))
	t.Setenv("SHIM_TEST_LOG", log)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{exe}, func() int {
		b, _ := os.ReadFile(log)
		n := 0
		for _, c := range b {
			if c == '\n' {
				n++
			}
		}
		return n
	}
}

// tendStub answers the first `restarts` exits with restart, then with exit,
// and records what it was told.
func tendStub(t *testing.T, restarts int) (socket string, got func() []Exit) {
	t.Helper()
	socket = filepath.Join(t.TempDir(), "shim.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	var exits []Exit
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			var e Exit
			if json.NewDecoder(c).Decode(&e) == nil {
				mu.Lock()
				exits = append(exits, e)
				again := len(exits) <= restarts
				mu.Unlock()
				json.NewEncoder(c).Encode(Verdict{Restart: again})
			}
			c.Close()
		}
	}()
	return socket, func() []Exit {
		mu.Lock()
		defer mu.Unlock()
		return append([]Exit(nil), exits...)
	}
}

func TestRestartsWhileTendSaysSo(t *testing.T) {
	argv, runs := command(t, 3)
	socket, got := tendStub(t, 2)
	if code := Run(Config{Argv: argv, Socket: socket, Token: "tok"}); code != 3 {
		t.Errorf("exit code %d, want the command's 3", code)
	}
	if n := runs(); n != 3 {
		t.Errorf("the command ran %d times, want 3 (two restarts)", n)
	}
	exits := got()
	if len(exits) != 3 || exits[0].Token != "tok" || exits[0].Code != 3 || exits[0].Finished.Before(exits[0].Started) {
		t.Errorf("reports: %+v", exits)
	}
}

func TestWithoutTendTheContainerEnds(t *testing.T) {
	argv, runs := command(t, 7)
	start := time.Now()
	if code := Run(Config{Argv: argv, Socket: filepath.Join(t.TempDir(), "none.sock")}); code != 7 {
		t.Errorf("exit code %d, want 7", code)
	}
	if runs() != 1 || time.Since(start) > 3*time.Second {
		t.Errorf("ran %d times in %s; want once, promptly", runs(), time.Since(start))
	}
}

func TestMissingCommandIs127(t *testing.T) {
	if code := Run(Config{Argv: []string{"/no/such/command"}, Socket: "/nonexistent"}); code != 127 {
		t.Errorf("exit code %d, want 127", code)
	}
}

func TestChildEnvironmentDropsTheToken(t *testing.T) {
	t.Setenv(EnvToken, "secret")
	for _, kv := range childEnv() {
		if kv == EnvToken+"=secret" {
			t.Fatal("the command would see the shim's token")
		}
	}
}
