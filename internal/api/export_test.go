package api

import "time"

// Patterns are the routes s registers, as http.ServeMux patterns.
func (s *Server) Patterns() []string {
	var ps []string
	for _, r := range s.routes() {
		ps = append(ps, r.pattern)
	}
	return ps
}

// SetWriteTimeout sets how long a stream's write may take, until the test ends.
func SetWriteTimeout(t interface{ Cleanup(func()) }, d time.Duration) {
	old := writeTimeout
	writeTimeout = d
	t.Cleanup(func() { writeTimeout = old })
}
