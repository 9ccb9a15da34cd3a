package metrics

import "sync"

// seriesMap finds a series by its labels. A map with the key's own generated hash, behind a
// read lock, costs about half of a sync.Map here: sync.Map hashes its any-typed keys by
// walking the struct's fields through the type's metadata, and these keys hold four strings.
type seriesMap[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

func (s *seriesMap[K, V]) load(k K) (V, bool) {
	s.mu.RLock()
	v, ok := s.m[k]
	s.mu.RUnlock()
	return v, ok
}

// loadOrMake returns k's series, making it with newSeries first if there is none.
func (s *seriesMap[K, V]) loadOrMake(k K, newSeries func() V) V {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[k]; ok {
		return v
	}
	if s.m == nil {
		s.m = map[K]V{}
	}
	v := newSeries()
	s.m[k] = v
	return v
}

// deleteIf drops every series whose key drop accepts.
func (s *seriesMap[K, V]) deleteIf(drop func(K) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.m {
		if drop(k) {
			delete(s.m, k)
		}
	}
}
