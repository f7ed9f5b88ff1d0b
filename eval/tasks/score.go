package tasks

import "strings"

// Score is how much of a case's answer a continuation recovered, in 0..1,
// and how many of its targets it contains.
//
// The rule is RULER's string_match_all with exact (case-sensitive)
// matching: each target (Answers, or Answer alone when Answers is empty)
// counts when it occurs anywhere in the continuation, and the score is the
// fraction of targets found. A single-answer task therefore scores 0 or 1;
// variable tracking and multi-value score partial credit. An empty
// continuation scores 0. Containment rather than "starts with" keeps the
// score independent of how a model spaces or prefixes its answer; the
// continuation is only a few tokens longer than the answer, which bounds
// the chance of a lucky match.
func Score(c *Case, continuation string) (score float64, found int) {
	targets := c.Targets()
	if continuation == "" || len(targets) == 0 {
		return 0, 0
	}
	for _, t := range targets {
		if t != "" && strings.Contains(continuation, t) {
			found++
		}
	}
	return float64(found) / float64(len(targets)), found
}
