//go:build !linux

package kernel

import "time"

// threadCPU is not measured outside Linux; benchmarks then report only
// wall-clock speeds.
func threadCPU() time.Duration { return 0 }
