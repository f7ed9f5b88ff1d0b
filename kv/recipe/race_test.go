//go:build race

package recipe

// raceEnabled skips the slow whole-cache memory measurement under the race
// detector; CI runs it without -race.
const raceEnabled = true
