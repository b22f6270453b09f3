package logwatch

import (
	"strings"
	"testing"
)

// Each trace line starts with "-" when it starts a record and "+" when it
// continues one, then a space.
var traces = map[string]string{
	"java": `
- 2025-01-02 10:00:00 INFO starting
- Exception in thread "main" java.lang.IllegalStateException: boom
+ 	at com.example.App.run(App.java:10)
+ 	at com.example.App.main(App.java:5)
+ Caused by: java.lang.NullPointerException: Cannot invoke "String.length()"
+ 	at com.example.Dao.load(Dao.java:20)
+ 	... 2 more
+ at com.example.Flat.frame(Flat.java:1)
- 2025-01-02 10:00:01 INFO next`,
	"go panic": `
- listening on :8080
- panic: runtime error: invalid memory address or nil pointer dereference [recovered]
+ 	panic: boom
+ [signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1b2c]
+ 
+ goroutine 1 [running]:
+ main.(*Server).handle(0xc0000a6000, {0x5d2a80, 0xc0000b2000})
+ 	/app/server.go:42 +0x1d
+ panic({0x4b4f40?, 0xc000012018?})
+ 	/usr/local/go/src/runtime/panic.go:785 +0x132
+ main.main()
+ 	/app/main.go:8 +0x25
+ 
+ goroutine 7 [chan receive]:
+ main.worker(...)
+ 	/app/worker.go:12
+ created by main.start in goroutine 1
+ 	/app/main.go:20 +0x4f
+ ...additional frames elided...
- listening on :8080 (restarted)
- main.init() is not a frame outside a crash`,
	"go fatal error": `
- fatal error: concurrent map writes
+ 
+ goroutine 5 [running]:
+ main.write(...)
+ 	/app/main.go:9
+ runtime stack:
- next process (pid 1)`,
	"python": `
- ERROR:root:request failed
+ Traceback (most recent call last):
+   File "/app/main.py", line 4, in <module>
+     1/0
+ ZeroDivisionError: division by zero
+ 
+ During handling of the above exception, another exception occurred:
+ 
+ Traceback (most recent call last):
+   File "/app/main.py", line 6, in <module>
+     raise ValueError("bad")
+ ValueError: bad
- INFO:root:next request`,
	"python first in stream": `
- Traceback (most recent call last):
+ File "/app/flat.py", line 1, in <module>
+ KeyError: 'x'
- KeyError: 'y' starts a record of its own
+ Traceback (most recent call last):
+   File "/app/a.py", line 1, in <module>
+ KeyError: 'a'
- Traceback (most recent call last):
+   File "/app/b.py", line 1, in <module>
+ KeyError: 'b'`,
}

func TestRecords(t *testing.T) {
	for name, trace := range traces {
		t.Run(name, func(t *testing.T) {
			var r records
			for i, l := range strings.Split(strings.TrimPrefix(trace, "\n"), "\n") {
				want, line := l[0] == '+', l[2:]
				if got := r.continues([]byte(line)); got != want {
					t.Errorf("line %d %q: continues = %v, want %v", i+1, line, got, want)
				}
			}
		})
	}
}

func TestRecordsEnd(t *testing.T) {
	var r records
	r.continues([]byte("panic: boom"))
	r.end()
	if r.continues([]byte("\tat frame")) {
		t.Error("the first line after end continues a record")
	}
	if !r.continues([]byte("\tat frame")) {
		t.Error("an indented line does not continue")
	}
}
