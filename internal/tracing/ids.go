package tracing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Span IDs may be chosen before the span exists, so that a metric observation recorded
// before the span (an exemplar) names the span it will become: OpEvent.TraceID/SpanID
// carry the choice, Sampled tells whether the span will be sampled.

type presetKey struct{}

type presetIDs struct {
	traceID trace.TraceID
	spanID  trace.SpanID
}

// presetIDGenerator gives a span the IDs its context presets, and random ones otherwise.
type presetIDGenerator struct{}

func (presetIDGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if p, ok := ctx.Value(presetKey{}).(presetIDs); ok {
		return p.traceID, p.spanID
	}
	var tid trace.TraceID
	for !tid.IsValid() {
		putUint64(tid[:8], rand.Uint64())
		putUint64(tid[8:], rand.Uint64())
	}
	return tid, randomSpanID()
}

func (presetIDGenerator) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if p, ok := ctx.Value(presetKey{}).(presetIDs); ok {
		return p.spanID
	}
	return randomSpanID()
}

func randomSpanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		putUint64(sid[:], rand.Uint64())
	}
	return sid
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// Sampled tells whether an operation span with this trace ID under parent (invalid for a
// root) will be sampled: the tracer's own sampler decides, as it will at span start. The
// samplers OTEL_TRACES_SAMPLER names decide on the parent and the trace ID alone.
func (t *Tracer) Sampled(parent trace.SpanContext, traceID trace.TraceID) bool {
	if !t.Enabled() {
		return false
	}
	ctx := context.Background()
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	return t.sampler.ShouldSample(sdktrace.SamplingParameters{ParentContext: ctx, TraceID: traceID,
		Kind: trace.SpanKindClient}).Decision == sdktrace.RecordAndSample
}

// samplerFromEnv reads OTEL_TRACES_SAMPLER(_ARG) as the SDK does; the tracer passes the
// result to its providers explicitly, so that Sampled and span start share one sampler.
func samplerFromEnv() (sdktrace.Sampler, error) {
	fallback := sdktrace.ParentBased(sdktrace.AlwaysSample())
	name := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER")))
	arg := strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER_ARG"))
	ratio := func() (sdktrace.Sampler, error) {
		if arg == "" {
			return sdktrace.TraceIDRatioBased(1), nil
		}
		v, err := strconv.ParseFloat(arg, 64)
		if err != nil || v < 0 || v > 1 {
			return sdktrace.TraceIDRatioBased(1), fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q is not a ratio between 0 and 1; sampling everything", arg)
		}
		return sdktrace.TraceIDRatioBased(v), nil
	}
	switch name {
	case "", "parentbased_always_on":
		return fallback, nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio":
		return ratio()
	case "parentbased_traceidratio":
		s, err := ratio()
		return sdktrace.ParentBased(s), err
	}
	return fallback, fmt.Errorf("unsupported OTEL_TRACES_SAMPLER=%q; using parentbased_always_on", name)
}
