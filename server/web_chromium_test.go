package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/kvgo/kvgo/engine/sched"
)

// TestWebPageInChromium drives the page in a real headless Chromium (as
// eval/report's test does; .ci/run installs Debian's): it loads the page,
// sends a chat and sees the streamed reply, switches to an evicting recipe,
// and checks that the inspector's rows show exactly the kept positions
// /v1/kv/inspect reports, that a position reads its token from the
// keyboard, and that a phone-width layout does not overflow. With
// KVGO_WEB_SHOTS=DIR it writes the screenshots of docs/ there.
func TestWebPageInChromium(t *testing.T) {
	ctx := browser(t)
	ts := start(t, sched.Config{}, Config{})
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	str := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	shots := os.Getenv("KVGO_WEB_SHOTS")
	shot := func(name, sel string) {
		if shots == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(sel), chromedp.NodeVisible))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(shots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// send types a message, sends it with Enter and waits for the reply's end.
	send := func(msg string) string {
		t.Helper()
		run("send", chromedp.SendKeys(chromedp.ID("prompt"), msg+kb.Enter),
			voidOf(chromedp.Poll[bool](`(()=>{const m=document.querySelectorAll(".msg.assistant");return m.length>0&&!!m[m.length-1].dataset.done})()`)))
		return str("reply", chromedp.Evaluate[string](`(()=>{const m=document.querySelectorAll(".msg.assistant");return m[m.length-1].textContent})()`))
	}

	run("load", chromedp.Navigate(ts.URL+"/"), voidOf(chromedp.Poll[bool](`document.querySelectorAll("#recipe option").length > 0`)),
		chromedp.SetValue(chromedp.ID("max-tokens"), "12"))
	if reply := send("What does the cache keep?"); strings.TrimSpace(reply) == "" {
		t.Fatalf("no streamed reply; the page shows: %s", str("log", chromedp.Text(chromedp.ID("log"))))
	}
	run("figures", voidOf(chromedp.Poll[bool](`document.getElementById("figures").textContent.includes("KV bytes")`)))
	figures := str("figures", chromedp.Text(chromedp.ID("figures")))
	for _, f := range []string{"Prompt tokens", "Tokens/s", "TTFT", "KV bytes"} {
		if !strings.Contains(figures, f) {
			t.Errorf("figures lack %q: %s", f, figures)
		}
	}
	shot("web-playground.png", "body")

	// An evicting recipe, a new chat with a long prompt.
	run("snapkv", chromedp.Click(chromedp.ID("clear")), chromedp.SetValue(chromedp.ID("max-tokens"), "8"))
	picked := str("pick", chromedp.Evaluate[string](`(()=>{const s=document.getElementById("recipe");
		const o=[...s.options].find(o=>o.value.startsWith("snapkv(budget=0.25") && !o.value.includes("kivi"));
		if(o){s.value=o.value;s.dispatchEvent(new Event("change"))} return s.value})()`))
	if !strings.HasPrefix(picked, "snapkv(") {
		t.Fatalf("the recipe picker offers no snapkv recipe (picked %q)", picked)
	}
	send(strings.Repeat("The cache keeps the keys and values of every token. ", 8) + "What does it keep?")
	run("inspector", voidOf(chromedp.Poll[bool](`(()=>{const s=document.getElementById("insp-summary").textContent;
		return s.startsWith("snapkv") && document.querySelectorAll("#grid .srow").length > 0})()`)))
	rows := str("rows", chromedp.Evaluate[string](`JSON.stringify([...document.querySelectorAll("#grid .srow")].map(r=>JSON.parse(r.dataset.ranges)))`))
	var shown [][][2]int32
	if err := json.Unmarshal([]byte(rows), &shown); err != nil {
		t.Fatal(err)
	}
	r := inspectOf(t, ts, nil)
	if r.Sequence == nil || len(shown) != len(r.Sequence.Streams) {
		t.Fatalf("the page shows %d rows, the endpoint %+v", len(shown), r.Sequence)
	}
	evicted := 0
	for i, st := range r.Sequence.Streams {
		want, _ := json.Marshal(st.Ranges)
		have, _ := json.Marshal(shown[i])
		if string(have) != string(want) {
			t.Fatalf("row %d (layer %d head %d) shows %s, the endpoint reports %s", i, st.Layer, st.Head, have, want)
		}
		if st.Kept < r.Sequence.Positions {
			evicted++
		}
	}
	if evicted == 0 {
		t.Fatal("snapkv evicted nothing the inspector could show")
	}
	run("keyboard", chromedp.Focus(chromedp.CSS("#grid .srow")), chromedp.KeyEvent(kb.ArrowRight))
	if tip := str("tip", chromedp.Text(chromedp.ID("tip"))); !strings.Contains(tip, "position 1 ") {
		t.Fatalf("the focused row reads %q", tip)
	}
	if v := str("slider", chromedp.Evaluate[string](`document.querySelector("#grid .srow").getAttribute("aria-valuetext")`)); !strings.Contains(v, "position 1 ") {
		t.Fatalf("a screen reader hears %q", v)
	}
	run("end", chromedp.KeyEvent(kb.End))
	if tip := str("tip", chromedp.Text(chromedp.ID("tip"))); !strings.Contains(tip, "(reply) · kept") {
		t.Fatalf("the last position reads %q", tip)
	}
	shot("web-inspector.png", "#inspector")

	// A selector: the summary counts the pages it read at the last step as
	// the endpoint reports them.
	run("quest", chromedp.Click(chromedp.ID("clear")), chromedp.SendKeys(chromedp.ID("recipe-custom"), "quest(budget=64)"))
	send(strings.Repeat("The cache keeps the keys and values of every token. ", 8) + "What does it keep?")
	run("quest inspector", voidOf(chromedp.Poll[bool](`document.getElementById("insp-summary").textContent.startsWith("quest")`)))
	q := inspectOf(t, ts, nil).Sequence
	read, all := 0, 0
	for _, st := range q.Streams {
		for _, p := range st.Pages {
			if p.Read != nil {
				all++
				if *p.Read {
					read++
				}
			}
		}
	}
	want := fmt.Sprintf("pages read at the last step by quest: %d of %d", read, all)
	if sum := str("summary", chromedp.Text(chromedp.ID("insp-summary"))); !strings.Contains(sum, want) || read == 0 || read == all {
		t.Fatalf("the summary reads %q, want %q with some pages skipped", sum, want)
	}
	shot("web-inspector-quest.png", "#inspector")

	// Phone width: nothing but the grid's own scroller is wider than the screen.
	run("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Sleep(300*time.Millisecond))
	wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
	if err != nil || wide {
		t.Fatalf("the page is wider than a 390 px screen (%v)", err)
	}
	shot("web-phone.png", "body")
}

// voidOf runs a and drops its value.
func voidOf[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}

// browser starts a headless Chromium for the test, or skips.
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			exe = p
			break
		}
	}
	if exe == "" {
		t.Skip("no Chromium on this machine (Debian: apt-get install -y chromium; .ci/run installs it): the page's browser test is skipped")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 1100), chromedp.Flag("disable-background-networking", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestWebPageWithAPIKey: on a server with keys the page loads, says a key
// is needed, and works once the user types one.
func TestWebPageWithAPIKey(t *testing.T) {
	ctx := browser(t)
	ts := start(t, sched.Config{}, Config{APIKeys: []string{"secret"}})
	err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/"),
		voidOf(chromedp.Poll[bool](`document.getElementById("methods").textContent.includes("API key")`)),
		chromedp.SendKeys(chromedp.ID("api-key"), "secret"+kb.Tab),
		voidOf(chromedp.Poll[bool](`document.querySelectorAll("#recipe option").length > 0`)),
		chromedp.SetValue(chromedp.ID("max-tokens"), "4"),
		chromedp.SendKeys(chromedp.ID("prompt"), "Hello"+kb.Enter),
		voidOf(chromedp.Poll[bool](`(()=>{const m=document.querySelectorAll(".msg.assistant");return m.length>0&&!!m[m.length-1].dataset.done})()`)))
	if err != nil {
		t.Fatal(err)
	}
	errs, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".msg.error").length`))
	if err != nil || errs != 0 {
		t.Fatalf("%d errors in the chat (%v)", errs, err)
	}
	if r := inspectOf(t, ts, map[string]string{"Authorization": "Bearer secret"}); r.Sequence == nil {
		t.Fatal("the page's chat left nothing to inspect for its key")
	}
}
