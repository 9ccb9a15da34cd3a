package metrics

import "sync"

// seriesMap finds a series by its labels. A map with the key's own generated hash, behind a
// read lock, costs about half of a sync.Map here: sync.Map hashes its any-typed keys by
// walking the struct's fields through the type's metadata, and these keys hold four strings.
//
// A key names its identity by pointer, which is cheap to hash; two identities with the same
// values are the same labels, so they share one series (byLabels), which the collectors
// write once.
type seriesMap[K labeled[L], L comparable, V comparable] struct {
	mu       sync.RWMutex
	m        map[K]V
	byLabels map[L]V
}

// labeled is a series key that can name its labels by value.
type labeled[L comparable] interface {
	comparable
	labels() L
}

func (s *seriesMap[K, L, V]) load(k K) (V, bool) {
	s.mu.RLock()
	v, ok := s.m[k]
	s.mu.RUnlock()
	return v, ok
}

// loadOrMake returns k's series, making it with newSeries first if there is none.
func (s *seriesMap[K, L, V]) loadOrMake(k K, newSeries func() V) V {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[k]; ok {
		return v
	}
	if s.m == nil {
		s.m, s.byLabels = map[K]V{}, map[L]V{}
	}
	l := k.labels()
	v, ok := s.byLabels[l]
	if !ok {
		v = newSeries()
		s.byLabels[l] = v
	}
	s.m[k] = v
	return v
}

// deleteIf drops every key drop accepts, and the series no other key names.
func (s *seriesMap[K, L, V]) deleteIf(drop func(K) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.m {
		if drop(k) {
			delete(s.m, k)
		}
	}
	clear(s.byLabels)
	for k, v := range s.m {
		s.byLabels[k.labels()] = v
	}
}

// values returns every series once, for a collector to write them outside the lock.
func (s *seriesMap[K, L, V]) values() []V {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]V, 0, len(s.byLabels))
	for _, v := range s.byLabels {
		out = append(out, v)
	}
	return out
}
