package server

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Chat fields and roles this server cannot honour are refused with
// "unsupported" rather than ignored: a client that sends tools or asks
// for JSON output would otherwise get an answer that silently is not what
// it asked for.

// chatRoles are the roles a message may have; "developer" (OpenAI's name
// for system messages to reasoning models) is rendered as "system".
var chatRoles = map[string]string{"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}

// chatExtras are the chat fields that change what a reply must be.
type chatExtras struct {
	Tools          json.RawMessage `json:"tools"`
	ToolChoice     json.RawMessage `json:"tool_choice"`
	Functions      json.RawMessage `json:"functions"`
	FunctionCall   json.RawMessage `json:"function_call"`
	ResponseFormat json.RawMessage `json:"response_format"`
}

// check refuses the extras that ask for something: tools (an empty list
// and tool_choice "none" ask for nothing), functions, and a response
// format other than text.
func (x *chatExtras) check() *apiError {
	switch {
	case !isNull(x.Tools) && !isEmptyArray(x.Tools):
		return invalid("tools", "unsupported", "tools are not supported")
	case !isNull(x.ToolChoice) && string(bytes.TrimSpace(x.ToolChoice)) != `"none"`:
		return invalid("tool_choice", "unsupported", "tool_choice is not supported")
	case !isNull(x.Functions) && !isEmptyArray(x.Functions):
		return invalid("functions", "unsupported", "functions are not supported")
	case !isNull(x.FunctionCall) && string(bytes.TrimSpace(x.FunctionCall)) != `"none"`:
		return invalid("function_call", "unsupported", "function_call is not supported")
	case !isNull(x.ResponseFormat):
		var f struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(x.ResponseFormat, &f); err != nil || f.Type != "text" {
			return invalid("response_format", "unsupported", "response_format: only {\"type\": \"text\"} is supported")
		}
	}
	return nil
}

// role checks a message's role and returns the one to render.
func (m *chatMessage) role(i int) (string, *apiError) {
	param := fmt.Sprintf("messages[%d].role", i)
	if m.Role == "" {
		return "", invalid(param, "missing_field", "%s is required", param)
	}
	r, ok := chatRoles[m.Role]
	if !ok {
		return "", invalid(param, "unsupported", "%s: role %s is not supported (system, developer, user, assistant)", param, quote(m.Role))
	}
	if !isNull(m.ToolCalls) && !isEmptyArray(m.ToolCalls) {
		return "", invalid(fmt.Sprintf("messages[%d].tool_calls", i), "unsupported", "messages[%d].tool_calls: tool calls are not supported", i)
	}
	return r, nil
}

func isEmptyArray(raw json.RawMessage) bool {
	var a []json.RawMessage
	return json.Unmarshal(raw, &a) == nil && len(a) == 0
}
