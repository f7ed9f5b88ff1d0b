package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// commonRequest holds the fields /v1/completions and /v1/chat/completions
// share. Pointers tell an absent field from a zero one. Unknown fields are
// ignored, as OpenAI clients send fields (user, metadata, ...) that do not
// change generation.
type commonRequest struct {
	Model            string          `json:"model"`
	MaxTokens        *int            `json:"max_tokens"`
	Temperature      *float64        `json:"temperature"`
	TopP             *float64        `json:"top_p"`
	Stop             json.RawMessage `json:"stop"`
	Seed             *int64          `json:"seed"`
	N                *int            `json:"n"`
	Stream           bool            `json:"stream"`
	StreamOptions    *streamOptions  `json:"stream_options"`
	PresencePenalty  *float64        `json:"presence_penalty"`
	FrequencyPenalty *float64        `json:"frequency_penalty"`
	Logprobs         json.RawMessage `json:"logprobs"`
	// KV is kvgo's extension: the KV-cache recipe of this request, e.g.
	// "snapkv(budget=512)+kivi(bits=4)".
	KV *string `json:"kv"`
	// IgnoreEOS keeps generating past end-of-generation tokens (as in
	// vLLM and llama.cpp), so benchmarks get the lengths they ask for.
	IgnoreEOS bool `json:"ignore_eos"`
	// CacheSalt isolates cached tokens (as vLLM's cache_salt): requests
	// share a prefix cache only with requests of the same salt and API
	// key (tenantOf).
	CacheSalt *string `json:"cache_salt"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type completionRequest struct {
	commonRequest
	Prompt json.RawMessage `json:"prompt"`
	// Chunks are reusable pieces of the prompt placed before it in order
	// (kvgo extension, chunks.go).
	Chunks []string `json:"chunks"`
	Echo   bool     `json:"echo"`
	BestOf *int     `json:"best_of"`
	Suffix *string  `json:"suffix"`
}

type chatRequest struct {
	commonRequest
	chatExtras
	Messages            []chatMessage `json:"messages"`
	MaxCompletionTokens *int          `json:"max_completion_tokens"`
}

type chatMessage struct {
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	ToolCalls json.RawMessage `json:"tool_calls"`
}

// contentPart is one element of an array-valued message content.
type contentPart struct {
	Type string  `json:"type"`
	Text *string `json:"text"`
}

var errEmptyBody = errors.New("empty body")

// decode reads one JSON value into v.
func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errEmptyBody
	}
	return json.Unmarshal(body, v)
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// stops parses "stop": absent, a string, or an array of up to 4 strings
// of at most maxStopBytes each.
func parseStops(raw json.RawMessage) ([]string, *apiError) {
	if isNull(raw) {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		if one == "" {
			return nil, nil
		}
		return checkStops([]string{one})
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, invalid("stop", "invalid_type", "stop: expected a string or an array of strings")
	}
	if len(many) > 4 {
		return nil, invalid("stop", "invalid_value", "stop: at most 4 stop sequences, got %d", len(many))
	}
	var out []string
	for _, s := range many {
		if s != "" {
			out = append(out, s)
		}
	}
	return checkStops(out)
}

// parsePrompt reads "prompt": a string, an array of one string, or an
// array of token ids. Several prompts (a batch) would need n choices per
// request, which this server does not do.
func parsePrompt(raw json.RawMessage) (text string, ids []int, e *apiError) {
	if isNull(raw) {
		return "", nil, invalid("prompt", "missing_field", "prompt is required")
	}
	if err := json.Unmarshal(raw, &text); err == nil {
		return text, nil, nil
	}
	var texts []string
	if err := json.Unmarshal(raw, &texts); err == nil {
		if len(texts) != 1 {
			return "", nil, invalid("prompt", "invalid_value", "prompt: exactly one prompt per request is supported, got %d", len(texts))
		}
		return texts[0], nil, nil
	}
	if err := json.Unmarshal(raw, &ids); err == nil {
		if len(ids) == 0 {
			return "", nil, invalid("prompt", "invalid_value", "prompt: the token array is empty")
		}
		return "", ids, nil
	}
	return "", nil, invalid("prompt", "invalid_type", "prompt: expected a string, an array of one string, or an array of token ids")
}

// messageText reads a message's content: a string, null, or an array of
// text parts (other part types, such as images, are not supported).
func messageText(i int, raw json.RawMessage) (string, *apiError) {
	param := "messages[" + itoa(i) + "].content"
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []contentPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", invalid(param, "invalid_type", "%s: expected a string or an array of content parts", param)
	}
	var b strings.Builder
	for j, p := range parts {
		if p.Type != "text" || p.Text == nil {
			return "", invalid(param, "unsupported", "%s[%d]: only parts of type \"text\" are supported, got %s", param, j, quote(p.Type))
		}
		b.WriteString(*p.Text)
	}
	return b.String(), nil
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// Responses.

type usage struct {
	PromptTokens        int                 `json:"prompt_tokens"`
	CompletionTokens    int                 `json:"completion_tokens"`
	TotalTokens         int                 `json:"total_tokens"`
	PromptTokensDetails promptTokensDetails `json:"prompt_tokens_details"`
}

type promptTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

type completionChoice struct {
	Index        int     `json:"index"`
	Text         string  `json:"text"`
	Logprobs     any     `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

type completionResponse struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *usage             `json:"usage,omitempty"`
	// KV is the canonical recipe the request ran with (kvgo extension).
	KV string `json:"kv,omitempty"`
}

type chatMessageOut struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type chatChoice struct {
	Index        int             `json:"index"`
	Message      *chatMessageOut `json:"message,omitempty"`
	Delta        *chatMessageOut `json:"delta,omitempty"`
	Logprobs     any             `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type chatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *usage       `json:"usage,omitempty"`
	KV      string       `json:"kv,omitempty"`
}

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// Context is the context length in tokens (kvgo extension).
	Context int `json:"context_length"`
}
