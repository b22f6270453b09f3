// Package logwatch heals on log patterns: it follows each replica's output
// and reports when one of the service's x-tend log rules fires, that is when
// Count records match the rule's Pattern within its Window. After firing, a
// rule ignores that replica's matches for its Cooldown, and its window starts
// again empty.
//
// It owns the matching (Matcher, pure: no I/O, no clock, the caller passes
// `now`) and the following of streams (Watcher). It must not import the
// Docker SDK: streams come from a Source, which runtime.Runtime satisfies.
// It decides nothing about what a fire does; the caller gets a Match and
// acts on Fire.Action.
//
//	w := logwatch.New(logwatch.Config{Source: rt, Clock: clock.Real{}, OnFire: onFire, Log: log})
//	go w.Run(ctx)    // blocks until ctx ends
//	w.Sync(targets)  // after each pass: every replica with rules, by container ID
//
// # Records
//
// A stack trace counts once, at its first line that matches. The Matcher
// splits the stream into records: a record is a line that does not continue
// the record before it, followed by the lines that do. A rule counts a
// record once, at its first matching line; later matches in the same record
// count for nothing (not even a match made after the rule's cooldown ended).
// A line continues the current record when:
//
//   - it is empty, or starts with a space or a tab (indented frames of
//     every language, Java's "\t... 3 more", Python's "  File ...");
//   - it starts with "at ", "Caused by", "...", `File "`,
//     "During handling of the above exception" or
//     "The above exception was the direct cause";
//   - it starts with "Traceback (most recent call last):", unless it comes
//     right after the line that closed a traceback (see next): two tracebacks
//     in a row are two records, one chained by "During handling ..." is one;
//   - it follows "Traceback (most recent call last):" and is the first line
//     that none of the above covers: Python's exception line
//     ("ValueError: bad") closes the traceback;
//   - the record started with "panic: " or "fatal error: " (a Go crash), and
//     the line starts with "goroutine ", "created by ", "[signal ",
//     "runtime stack:" or "...", or is a frame's function line: it ends with
//     ")" and has no blank before its first "(", as in "main.(*T).run(...)".
//     The first line that is none of these, nor blank or indented, ends the
//     crash.
//
// The first line of each stream (after a reconnect too) starts a record.
// What this misses: a Java logger's unindented exception line after its own
// message ("ERROR failed" then "java.lang.IllegalStateException: boom") is a
// second record; a pattern matching both counts twice.
//
// # Streams
//
// Lines longer than MaxLine (64 KiB) are cut: the rest up to the newline is
// skipped. Memory per container is the reader's 64 KiB buffer and the rules'
// windows (at most Count times each); fires wait in a short queue for
// OnFire, and when it is full the stream is no longer read, so output
// backs up in the engine, not in tend.
//
// A stream ends when its container stops. While the container is still in
// the synced set it is asked for again, after 100 ms doubling to 5 s while
// the streams bring nothing, with since set to when the last line was read
// (at first, the target's StartedAt). Sources give no line timestamps, so
// nothing is skipped by time: a line the engine stamped before tend read the
// previous one but had not delivered when the stream broke is lost, and one
// is read twice only if the engine's clock runs ahead of tend's.
//
// Matching runs at memory speed on lines that lack the literals a pattern
// needs ("FATAL" or "panic:" for "FATAL|panic:", "fatal" in any ASCII case
// for "(?i)fatal"); only a pattern with no such literal, like `[A-Z]{6,}`,
// puts every line through Go's regexp. BenchmarkMatcherFlood (two rules, on
// the shared 2-core dev machine): literals 300-520 MB/s, case-folded
// 230-280 MB/s, regexp-only 6-10 MB/s. A stream that outruns matching is
// read late, not buffered.
package logwatch
