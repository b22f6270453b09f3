// Package notify tells people what tend did: it follows the journal and POSTs
// its entries to webhooks, as generic JSON (Payload, documented in
// internal/api/openapi.yaml) or as Slack-compatible messages.
//
// Entries are gathered per service (batcher, group.go: a plain value driven
// with `now`, no clock of its own), so a crash loop is one POST after a few
// seconds and then at most one per interval, not one per restart. Each webhook
// has its own goroutine and a bounded outbox, retried with backoff for a
// window; a receiver that is down or hangs holds up only that goroutine.
// Nothing on the healing path calls this package: it only reads the store,
// and the journal it reads is durable.
//
// It reads time only through its Config.Clock and imports no Docker SDK.
package notify
