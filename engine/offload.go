package engine

import (
	"fmt"

	"github.com/kvgo/kvgo/internal/units"
	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/offload"
	"github.com/kvgo/kvgo/kv/recipe"
)

// NewSeqCache makes the cache of one sequence as NewCache does, with its
// pages in a cold tier of their own when the engine has one (Offload):
// then the returned store holds the sequence's file and must be closed
// when the sequence ends (Session.Close, the scheduler), which removes
// it. Without a cold tier the store is nil (closing it does nothing).
func (e *Engine) NewSeqCache(r *recipe.Recipe, n int) (*kv.Cache, *offload.Store, error) {
	if e.Offload == nil {
		c, err := e.NewCache(r, n)
		return c, nil, err
	}
	if r == nil {
		var err error
		if r, err = recipe.Parse(""); err != nil {
			return nil, nil, err
		}
	}
	cfg, err := r.Config()
	if err != nil {
		return nil, nil, err
	}
	cfg.RoPE = e.Model.Rotary()
	st, err := offload.Open(*e.Offload)
	if err != nil {
		return nil, nil, err
	}
	if cfg.K, err = st.Codec(cfg.K); err == nil {
		cfg.V, err = st.Codec(cfg.V)
	}
	var c *kv.Cache
	if err == nil {
		c, err = kv.New(e.Model.CacheShape(), cfg, n)
	}
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return c, st, nil
}

// OffloadFallback decides what an engine does when its cold tier's
// directory cannot be written (offload.Check): a sequence whose whole
// cache, need bytes, fits the memory budget runs in memory and warn says
// so; otherwise the directory's error is returned with the numbers.
func OffloadFallback(dir string, checkErr error, need, budget int64) (warn string, err error) {
	if need <= budget {
		return fmt.Sprintf("warning: %v; the cache (up to %s) fits the memory budget of %s, so it stays in memory", checkErr, units.Bytes(need), units.Bytes(budget)), nil
	}
	return "", fmt.Errorf("%w; the cache needs up to %s, more than the memory budget of %s, so it cannot stay in memory instead", checkErr, units.Bytes(need), units.Bytes(budget))
}
