package spec

import (
	"cmp"
	"slices"
)

// Overlay is what `tend up SERVICE...` asks for: the services of sel (the named
// ones and what they depend on) replace or join those of base, and base's other
// services stay as they are, as `docker compose up SERVICE` leaves them running.
// Networks and volumes are the union, sel's winning on a shared key. The result
// still has to pass Validate: a host port may now be published twice.
func Overlay(base, sel *Project) *Project {
	out := &Project{Name: sel.Name}
	out.Services = overlay(base.Services, sel.Services, func(s Service) string { return s.Name })
	out.Networks = overlay(base.Networks, sel.Networks, func(n Network) string { return n.Key })
	out.Volumes = overlay(base.Volumes, sel.Volumes, func(v Volume) string { return v.Key })
	return out
}

// overlay merges two lists sorted by key, b's element winning on a shared key.
func overlay[T any](a, b []T, key func(T) string) []T {
	taken := map[string]bool{}
	out := slices.Clone(b)
	for _, x := range b {
		taken[key(x)] = true
	}
	for _, x := range a {
		if !taken[key(x)] {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(x, y T) int { return cmp.Compare(key(x), key(y)) })
	return out
}
