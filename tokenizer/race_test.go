//go:build race

package tokenizer

// raceEnabled skips measurements too slow under the race detector.
const raceEnabled = true
