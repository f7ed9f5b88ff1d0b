//go:build race

package retrieve

// raceEnabled: the race detector makes sync.Pool drop a share of what is
// put back (to expose races), so allocation counts are only checked
// without it.
const raceEnabled = true
