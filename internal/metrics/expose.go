package metrics

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/prometheus/common/expfmt"

	"github.com/asobserve/asobserve/internal/semconv"
)

// alwaysDeclared are the families whose HELP/TYPE lines appear even with no samples,
// as the seed requires (client_golang drops empty families from Gather).
var alwaysDeclared = []struct{ name, help string }{
	{semconv.OperationMetric, semconv.OperationHelp},
	{semconv.StageMetric, semconv.StageHelp},
}

// Encode writes every family in the given exposition format.
func (r *Recorder) Encode(w io.Writer, format expfmt.Format) error {
	mfs, err := r.Registry.Gather()
	if err != nil {
		return err
	}
	present := map[string]bool{}
	for _, mf := range mfs {
		present[mf.GetName()] = true
	}
	enc := expfmt.NewEncoder(w, format)
	isOM := format.FormatType() == expfmt.TypeOpenMetrics
	for _, d := range alwaysDeclared {
		if present[d.name] {
			continue
		}
		if isOM || format.FormatType() == expfmt.TypeTextPlain {
			if _, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", d.name, d.help, d.name); err != nil {
				return err
			}
		}
	}
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	if closer, ok := enc.(expfmt.Closer); ok {
		return closer.Close()
	}
	return nil
}

// Text returns the Prometheus text exposition (the seed's get_metrics()).
func (r *Recorder) Text() string {
	var buf bytes.Buffer
	_ = r.Encode(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	return buf.String()
}

// Handler serves the exposition, negotiating OpenMetrics when the scraper asks for it.
func (r *Recorder) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		format := expfmt.NegotiateIncludingOpenMetrics(req.Header)
		var buf bytes.Buffer
		if err := r.Encode(&buf, format); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", string(format))
		_, _ = w.Write(buf.Bytes())
	})
}
