//go:build linux

package attach_test

import events "github.com/asobserve/asobserve/internal/observe"

// hooks is an observer made of functions, for tests that watch only some events.
type hooks struct {
	op    func(*events.Target, events.Op)
	stage func(*events.Target, events.Stage)
}

func (h hooks) Op(t *events.Target, op events.Op) {
	if h.op != nil {
		h.op(t, op)
	}
}

func (h hooks) Stage(t *events.Target, st events.Stage) {
	if h.stage != nil {
		h.stage(t, st)
	}
}

func (hooks) TargetGone(*events.Target) {}
