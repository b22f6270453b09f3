package api_test

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/errs"
)

func TestListen(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string) // what is at path before Listen
	}{
		{name: "nothing there", setup: func(*testing.T, string) {}},
		{name: "a stale socket", setup: func(t *testing.T, path string) {
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			l.(*net.UnixListener).SetUnlinkOnClose(false) // as a daemon that was killed leaves it
			l.Close()
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("no stale socket: %v", err)
			}
		}},
		{name: "a stale socket open to all", setup: func(t *testing.T, path string) {
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			l.(*net.UnixListener).SetUnlinkOnClose(false)
			l.Close()
			if err := os.Chmod(path, 0o777); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tend.sock")
			tt.setup(t, path)
			l, err := api.Listen(path)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
				t.Errorf("socket mode %s, want a socket with 0600", fi.Mode())
			}
			// The listener is live: a connection is accepted.
			accepted := make(chan error, 1)
			go func() {
				c, err := l.Accept()
				if err == nil {
					c.Close()
				}
				accepted <- err
			}()
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Fatalf("dial the new socket: %v", err)
			}
			c.Close()
			if err := <-accepted; err != nil {
				t.Errorf("accept: %v", err)
			}
		})
	}
}

func TestListenRefusesALiveDaemon(t *testing.T) {
	d := startDaemon(t)
	if l, err := api.Listen(d.sock); errs.KindOf(err) != errs.Conflict {
		if l != nil {
			l.Close()
		}
		t.Fatalf("second Listen on a live socket: err = %v, want conflict", err)
	}
	// The first daemon still answers on its socket.
	if _, err := d.client.Projects(t.Context()); err != nil {
		t.Errorf("the first daemon after a refused second: %v", err)
	}
}

func TestListenKeepsAFileThatIsNoSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tend.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if l, err := api.Listen(path); errs.KindOf(err) != errs.Invalid {
		if l != nil {
			l.Close()
		}
		t.Fatalf("Listen over a regular file: err = %v, want invalid", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
		t.Errorf("the file after Listen: %q, %v; want it untouched", b, err)
	}
}
