package main

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
)

// maxBurn bounds POST /burn: a typo must not take every core of the host.
const maxBurn = 4

// burner keeps some cores busy, to show tend's cpu autoscale target a
// service that works hard with no HTTP load.
type burner struct {
	mu   sync.Mutex
	stop chan struct{} // closed to end the current burn; nil: none
}

// set burns n cores from now on (0: none).
func (b *burner) set(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stop != nil {
		close(b.stop)
		b.stop = nil
	}
	if n == 0 {
		return
	}
	b.stop = make(chan struct{})
	for range n {
		go spin(b.stop)
	}
}

// spin works until stop is closed.
func spin(stop <-chan struct{}) {
	for x := uint64(1); ; x = x*6364136223846793005 + 1442695040888963407 {
		if x&0xffff == 0 {
			select {
			case <-stop:
				return
			default:
			}
		}
	}
}

func (s *server) handleBurn(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("cores"))
	if err != nil || n < 0 || n > maxBurn {
		text(w, http.StatusBadRequest, fmt.Sprintf("cores: want a whole number in 0..%d", maxBurn))
		return
	}
	s.burn.set(n)
	text(w, http.StatusOK, fmt.Sprintf("burning %d cores", n))
}
