//go:build linux && race

package attach_test

// raceScale divides the probed-call count of the tests that exist to make many calls: the
// race detector slows the agent's reader several times, which they would measure instead.
const raceScale = 4
