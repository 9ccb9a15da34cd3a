package inproc

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// gathererCollector exposes a registry's families as a Collector for another registry. It is
// an unchecked collector (Describe sends nothing), since its series appear as operations run.
type gathererCollector struct{ g prometheus.Gatherer }

func (gathererCollector) Describe(chan<- *prometheus.Desc) {}

func (c gathererCollector) Collect(ch chan<- prometheus.Metric) {
	mfs, err := c.g.Gather()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(prometheus.NewDesc("asobserve_inproc_gather_error", "Gathering asobserve's registry failed.", nil, nil), err)
		return
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			names := make([]string, 0, len(m.GetLabel()))
			for _, lp := range m.GetLabel() {
				names = append(names, lp.GetName())
			}
			ch <- gatheredMetric{desc: prometheus.NewDesc(mf.GetName(), mf.GetHelp(), names, nil), m: m}
		}
	}
}

// gatheredMetric hands on a gathered sample whole, so that the application's registry serves
// what ours does: native buckets and exemplars included, which the const-metric constructors
// would drop.
type gatheredMetric struct {
	desc *prometheus.Desc
	m    *dto.Metric
}

func (g gatheredMetric) Desc() *prometheus.Desc { return g.desc }

func (g gatheredMetric) Write(out *dto.Metric) error {
	proto.Merge(out, g.m)
	return nil
}
