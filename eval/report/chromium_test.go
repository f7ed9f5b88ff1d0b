package report

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds a Chromium to drive, or skips: CI installs Debian's
// (.ci/run: apt-get install chromium); a developer's machine may lack it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium on this machine (Debian: apt-get install -y chromium; .ci/run installs it): the report's browser check is skipped")
	return ""
}

// crowded is a report with as many recipes as docs/QUALITY.md's passkey
// table and several budgets per method, so its charts are as crowded as
// real ones get.
func crowded() *Report {
	r := sample()
	r.Cases = nil
	r.Recipes = nil
	names := []struct {
		name, method string
		ratio        float64
	}{
		{"f16", "f16", 1}, {"q8", "q8", 0.545}, {"kivi(bits=4)", "kivi", 0.533}, {"kivi(bits=2)", "kivi", 0.443},
		{"streaming(budget=0.25)", "streaming", 0.279}, {"streaming(budget=0.5)", "streaming", 0.52},
		{"h2o(budget=0.25)", "h2o", 0.304}, {"h2o(budget=0.5)", "h2o", 0.53},
		{"tova(budget=0.25)", "tova", 0.306}, {"snapkv(budget=0.25)", "snapkv", 0.317}, {"snapkv(budget=0.5)", "snapkv", 0.55},
		{"pyramidkv(budget=0.25)", "pyramidkv", 0.298}, {"knorm(budget=0.25)", "knorm", 0.304},
		{"snapkv(budget=0.25)+kvcrush", "snapkv+kvcrush", 0.317}, {"snapkv(budget=0.25)+kivi(bits=4)", "snapkv+kivi", 0.2},
	}
	for i, n := range names {
		f := &Fidelity{MeanKLD: 0.001 * float64(i*i), P99KLD: 0.02 * float64(i*i+1), Top1: 1 - 0.01*float64(i), PPL: 20, BasePPL: 20,
			MeanKLDSE: 0.0003 * float64(i*i), Chunks: 2, Positions: 1000, KVBytes: int64(1000 * n.ratio), FullKVBytes: 1000, Ratio: n.ratio}
		r.Recipes = append(r.Recipes, Recipe{Name: n.name, Recipe: n.name, Method: n.method, Fidelity: f})
		line := 0
		for _, length := range []int{256, 512, 1024, 2048} {
			for k := range 15 {
				line++
				d := float64(k) / 14
				score := 0.0
				if (k+i)%(1+i%4) == 0 {
					score = 1
				}
				full := int64(length * 1100)
				in := i >= 4 && k > 12
				r.Cases = append(r.Cases, CaseResult{Line: line, Recipe: n.name, Task: "passkey", ContextTokens: length, PromptTokens: length - 8,
					Depth: ptr(d), InWindow: &in, Answers: []string{"12345"}, Output: " 12345", Score: score, GeneratedTokens: 6,
					KVBytes: int64(float64(full) * n.ratio), KVBytesPeak: full + int64(i)*1000, FullKVBytes: full,
					PrefillMs: float64(length) / float64(5+i), TTFTMs: float64(length) / 5, DecodeMs: 3})
			}
		}
	}
	r.Finalize()
	return r
}

// overlapScript lists, for every chart of the page, the pairs of text
// elements whose boxes on screen overlap by more than half a pixel each
// way, and every chart drawn with no size.
const overlapScript = `(() => {
  const out = [];
  document.querySelectorAll('figure').forEach((fig) => {
    const svg = fig.querySelector('svg');
    const title = (fig.querySelector('figcaption b') || {}).textContent || '?';
    const box = svg.getBoundingClientRect();
    if (box.width < 10 || box.height < 10) { out.push(title + ': drawn with no size'); return; }
    const texts = [...svg.querySelectorAll('text')]
      .filter((t) => t.textContent.trim() !== '')
      .map((t) => ({s: t.textContent.trim(), r: t.getBoundingClientRect()}));
    for (let i = 0; i < texts.length; i++) {
      for (let j = i + 1; j < texts.length; j++) {
        const a = texts[i].r, b = texts[j].r;
        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > 0.5 && h > 0.5) out.push(title + ': "' + texts[i].s + '" overlaps "' + texts[j].s + '"');
      }
    }
  });
  return out;
})()`

// TestReportInChromium renders crowded reports in headless Chromium and
// checks that every chart has a size and that no two text labels of a
// chart overlap: point labels, legends, ticks and axis titles.
func TestReportInChromium(t *testing.T) {
	exe := chromium(t)
	dir := t.TempDir()
	for name, r := range map[string]*Report{"sample": sample(), "crowded": crowded(), "empty": New(time.Now())} {
		path := filepath.Join(dir, name+".html")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.WriteHTML(f); err != nil {
			t.Fatal(err)
		}
		f.Close()
		problems, err := renderAndCheck(exe, path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(problems) > 0 {
			t.Errorf("%s report, %d problem(s) in Chromium:\n%s", name, len(problems), strings.Join(problems, "\n"))
		}
	}
}

// renderAndCheck opens the page in headless Chromium (offline: the page
// is self-contained) at a desktop width and runs overlapScript.
func renderAndCheck(exe, path string) ([]string, error) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 2000), chromedp.Flag("disable-background-networking", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+path), chromedp.WaitReady("body")); err != nil {
		return nil, fmt.Errorf("chromium: %w", err)
	}
	problems, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](overlapScript))
	if err != nil {
		return nil, fmt.Errorf("chromium: %w", err)
	}
	return problems, nil
}

// TestOverlapCheckSeesOverlaps makes sure the browser check is not
// vacuous: a chart with two texts on top of each other must fail it.
func TestOverlapCheckSeesOverlaps(t *testing.T) {
	exe := chromium(t)
	path := filepath.Join(t.TempDir(), "overlap.html")
	page := `<!DOCTYPE html><html><body><figure><svg width="300" height="100" viewBox="0 0 300 100">` +
		`<text x="10" y="50" font-size="12">snapkv(budget=0.25)</text><text x="40" y="52" font-size="12">pyramidkv(budget=0.25)</text>` +
		`<text x="10" y="90" font-size="12">alone</text></svg><figcaption><b>test</b></figcaption></figure></body></html>`
	if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	problems, err := renderAndCheck(exe, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "pyramidkv") {
		t.Errorf("problems %q, want the one overlap", problems)
	}
}
