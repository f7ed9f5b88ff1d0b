package server

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvgo/kvgo/engine/sched"
)

// TestOpenAINodeClient runs the official openai npm package, unchanged,
// against the server (testdata/openai-client/check.mjs). It needs Node and
// `npm ci` in testdata/openai-client; without them it is skipped.
func TestOpenAINodeClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	dir := filepath.Join("testdata", "openai-client")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai")); err != nil {
		t.Skip("the openai package is not installed: run `npm ci` in server/testdata/openai-client")
	}
	ts := start(t, sched.Config{}, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "check.mjs", ts.URL+"/v1", modelID)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node check.mjs: %v\n%s", err, out)
	}
	var got struct {
		Models     []string
		Completion struct {
			Text, Finish string
			Usage        usage
		}
		Chat struct {
			Content, Role, Finish string
			Usage                 usage
		}
		Stream struct {
			Text, Finish string
			Usage        *usage
			Chunks       int
		}
		CompletionStream string
		BadRecipe        struct {
			Status            int
			Code, Param, Type string
			Message           string
		}
		BadModel struct {
			Status int
			Code   string
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if len(got.Models) != 1 || got.Models[0] != modelID {
		t.Errorf("models %v", got.Models)
	}
	if want := reference(t, "The quick brown fox", 8); got.Completion.Text != want || got.Completion.Finish != "length" || got.Completion.Usage.CompletionTokens != 8 {
		t.Errorf("completion %+v, want text %q", got.Completion, want)
	}
	if got.Chat.Role != "assistant" || got.Chat.Content == "" || got.Chat.Usage.PromptTokens == 0 {
		t.Errorf("chat %+v", got.Chat)
	}
	if got.Stream.Text == "" || got.Stream.Finish == "" || got.Stream.Usage == nil || got.Stream.Chunks < 3 {
		t.Errorf("stream %+v", got.Stream)
	}
	if got.CompletionStream == "" {
		t.Error("empty completion stream")
	}
	if got.BadRecipe.Status != 400 || got.BadRecipe.Code != "invalid_kv_recipe" || got.BadRecipe.Param != "kv" || !strings.Contains(got.BadRecipe.Message, "valid") {
		t.Errorf("bad recipe %+v", got.BadRecipe)
	}
	if got.BadModel.Status != 404 || got.BadModel.Code != "model_not_found" {
		t.Errorf("bad model %+v", got.BadModel)
	}
}
