package nodes

import "fmt"

// Figures are what a node reports of its resources, every few seconds.
type Figures struct {
	DiskFree     float64 `json:"disk_free"`     // of the engine's data root, a fraction; <0: unknown
	MemAvailable float64 `json:"mem_available"` // MemAvailable of MemTotal, a fraction; <0: unknown
	Load         float64 `json:"load"`          // the 1-minute load average per core
}

func (f Figures) String() string {
	return fmt.Sprintf("disk free %.1f%%, memory available %.1f%%, load %.2f per core", 100*f.DiskFree, 100*f.MemAvailable, f.Load)
}

// Pressure are the thresholds under which tend drains a node before it
// fails, and the margin it must recover by before it takes replicas again.
type Pressure struct {
	DiskFree     float64 // drain below this fraction of the disk free (default 0.10)
	MemAvailable float64 // drain below this fraction of memory available (default 0.05)
	Hysteresis   float64 // and undrain once both are this much above (default 0.05)
}

// DefaultPressure are the thresholds of a cluster that names none.
var DefaultPressure = Pressure{DiskFree: 0.10, MemAvailable: 0.05, Hysteresis: 0.05}

// Under tells whether a node with figures f is under pressure, given that
// it was (was): entering takes a figure below its threshold, leaving takes
// every figure above its threshold plus the hysteresis. why says which.
func (p Pressure) Under(f Figures, was bool) (under bool, why string) {
	low := func(v, limit float64) bool { return v >= 0 && v < limit }
	switch {
	case low(f.DiskFree, p.DiskFree):
		return true, fmt.Sprintf("disk free %.1f%% < %.0f%%", 100*f.DiskFree, 100*p.DiskFree)
	case low(f.MemAvailable, p.MemAvailable):
		return true, fmt.Sprintf("memory available %.1f%% < %.0f%%", 100*f.MemAvailable, 100*p.MemAvailable)
	case was && (low(f.DiskFree, p.DiskFree+p.Hysteresis) || low(f.MemAvailable, p.MemAvailable+p.Hysteresis)):
		return true, "recovering, not yet past the threshold plus the hysteresis"
	}
	return false, ""
}
