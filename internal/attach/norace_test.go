//go:build linux && !race

package attach_test

// raceScale is 1 without the race detector (race_test.go).
const raceScale = 1
