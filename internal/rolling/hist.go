package rolling

import (
	"math"
	"math/bits"
)

// The latency histogram is log-linear (HDR style): values below 32 ns are counted exactly,
// every octave [2^k·32, 2^k·64) above is split into 32 equal sub-buckets. A percentile is
// reported as the midpoint of the bucket holding the nearest-rank sample, so its relative
// error is at most half a sub-bucket: 1/64 ≈ 1.6 % (MaxRelativeError). Octave blocks are
// allocated on first use, so a slot only pays for the octaves its samples actually span.
const (
	subBits   = 5
	subCount  = 1 << subBits
	maxBlocks = 37 // block 0 exact, blocks 1..36 cover up to 2^41 ns (~36 min); larger values clamp
)

// MaxRelativeError bounds |reported − exact| / exact for every percentile.
const MaxRelativeError = 1.0 / (2 * subCount)

type block [subCount]uint32

type hist struct {
	blocks [maxBlocks]*block
	used   uint64 // bit b set when blocks[b] holds non-zero counts
}

func bucketOf(ns int64) (blk, sub int) {
	if ns < 0 {
		ns = 0
	}
	v := uint64(ns)
	if v < subCount {
		return 0, int(v)
	}
	k := bits.Len64(v) - subBits - 1
	blk = k + 1
	if blk >= maxBlocks {
		return maxBlocks - 1, subCount - 1
	}
	return blk, int(v>>uint(k)) - subCount
}

// bucketMid is the value reported for samples in (blk, sub), in nanoseconds.
func bucketMid(blk, sub int) float64 {
	if blk == 0 {
		return float64(sub)
	}
	k := uint(blk - 1)
	lo := float64(uint64(subCount+sub) << k)
	width := float64(uint64(1) << k)
	return lo + (width-1)/2
}

func (h *hist) add(ns int64) {
	b, s := bucketOf(ns)
	if h.blocks[b] == nil {
		h.blocks[b] = new(block)
	}
	h.blocks[b][s]++
	h.used |= 1 << uint(b)
}

func (h *hist) reset() {
	for u := h.used; u != 0; u &= u - 1 {
		*h.blocks[bits.TrailingZeros64(u)] = block{}
	}
	h.used = 0
}

// merge adds o into the dense accumulator acc.
func (o *hist) mergeInto(acc *[maxBlocks][subCount]uint64) {
	for u := o.used; u != 0; u &= u - 1 {
		b := bits.TrailingZeros64(u)
		for s, c := range o.blocks[b] {
			acc[b][s] += uint64(c)
		}
	}
}

// quantiles returns the nearest-rank quantiles qs (ascending) of total samples in acc, in ns.
func quantiles(acc *[maxBlocks][subCount]uint64, total uint64, qs []float64) []float64 {
	out := make([]float64, len(qs))
	if total == 0 {
		return out
	}
	ranks := make([]uint64, len(qs))
	for i, q := range qs {
		ranks[i] = nearestRank(q, total)
	}
	var seen uint64
	qi := 0
	for b := 0; b < maxBlocks && qi < len(qs); b++ {
		for s := 0; s < subCount && qi < len(qs); s++ {
			c := acc[b][s]
			if c == 0 {
				continue
			}
			seen += c
			for qi < len(qs) && ranks[qi] <= seen {
				out[qi] = bucketMid(b, s)
				qi++
			}
		}
	}
	return out
}

// nearestRank is the 1-based rank of quantile q among n samples: ceil(q·n), clamped to [1, n].
// The epsilon keeps 0.95·100 at 95 despite binary floating point.
func nearestRank(q float64, n uint64) uint64 {
	r := uint64(math.Ceil(q*float64(n) - 1e-9))
	if r < 1 {
		r = 1
	}
	if r > n {
		r = n
	}
	return r
}
