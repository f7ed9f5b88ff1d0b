package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/kvgo/kvgo/engine/sched"
)

// apiError is an error answered with an OpenAI-style body:
//
//	{"error": {"message": "...", "type": "invalid_request_error", "param": "max_tokens", "code": null}}
//
// Clients built for the OpenAI API (the openai npm and Python packages)
// read exactly these four fields.
type apiError struct {
	Status  int     `json:"-"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
	// RetryAfter, in seconds, is sent as a Retry-After header (429, 503).
	RetryAfter int `json:"-"`
}

func (e *apiError) Error() string { return e.Message }

// Error types, as OpenAI names them.
const (
	typeInvalid   = "invalid_request_error"
	typeNotFound  = "not_found_error"
	typeRateLimit = "rate_limit_error"
	typeServer    = "server_error"
	typeOverload  = "service_unavailable_error"
)

func ptr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// invalid is a 400 about one request field.
func invalid(param, code, format string, a ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: typeInvalid, Param: ptr(param), Code: ptr(code), Message: fmt.Sprintf(format, a...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"message":"encoding the response failed","type":"server_error","param":null,"code":null}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, e *apiError) {
	e.Message = clip(e.Message)
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, e.Status, map[string]any{"error": e})
}

// fromSched maps a scheduler error to the API error a client should see.
func fromSched(err error) *apiError {
	msg := err.Error()
	switch {
	case errors.Is(err, sched.ErrQueueFull):
		return &apiError{Status: http.StatusTooManyRequests, Type: typeRateLimit, Code: ptr("queue_full"), Message: "the server's request queue is full; retry later", RetryAfter: 1}
	case errors.Is(err, sched.ErrDraining), errors.Is(err, sched.ErrShutdown):
		return &apiError{Status: http.StatusServiceUnavailable, Type: typeOverload, Code: ptr("shutting_down"), Message: "the server is shutting down", RetryAfter: 1}
	case errors.Is(err, sched.ErrKVExhausted):
		return &apiError{Status: http.StatusServiceUnavailable, Type: typeOverload, Code: ptr("kv_memory_exhausted"), Message: msg, RetryAfter: 1}
	case errors.Is(err, sched.ErrContext):
		return invalid("messages", "context_length_exceeded", "%s", msg)
	case errors.Is(err, sched.ErrTooLarge):
		return invalid("max_tokens", "kv_budget_exceeded", "%s", msg)
	case errors.Is(err, sched.ErrInvalid):
		return invalid("", "invalid_value", "%s", strings.TrimPrefix(msg, sched.ErrInvalid.Error()+": "))
	}
	return &apiError{Status: http.StatusInternalServerError, Type: typeServer, Message: msg}
}

// decodeError explains a JSON body that could not be decoded.
func decodeError(err error) *apiError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var big *http.MaxBytesError
	switch {
	case errors.As(err, &big):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Type: typeInvalid, Code: ptr("request_too_large"),
			Message: fmt.Sprintf("the request body exceeds %d bytes", big.Limit)}
	case errors.As(err, &syn):
		return invalid("", "invalid_json", "the request body is not valid JSON: %v (at byte %d)", err, syn.Offset)
	case errors.As(err, &typ):
		// Fields of the embedded commonRequest come prefixed with its name.
		field := strings.TrimPrefix(strings.TrimPrefix(typ.Field, "commonRequest."), "chatExtras.")
		if field == "" {
			got, _, _ := strings.Cut(typ.Value, " ")
			return invalid("", "invalid_type", "the request body must be a JSON object, not %s", got)
		}
		// Value is a kind ("string"), or "number" and the literal: cut it.
		got, _, _ := strings.Cut(typ.Value, " ")
		return invalid(field, "invalid_type", "%s: expected %s, got %s", field, typeName(typ.Type.String()), got)
	case errors.Is(err, errEmptyBody):
		return invalid("", "invalid_json", "the request body is empty; send a JSON object")
	}
	return invalid("", "invalid_json", "the request body is not valid JSON: %v", err)
}

func typeName(goType string) string {
	switch goType {
	case "[]server.chatMessage":
		return "an array of messages"
	case "server.chatMessage", "server.streamOptions", "*server.streamOptions":
		return "an object"
	case "[]int", "[]string", "[]json.RawMessage":
		return "an array"
	case "string", "*string":
		return "a string"
	case "int", "*int", "int64", "*int64":
		return "an integer"
	case "float64", "*float64":
		return "a number"
	case "bool", "*bool":
		return "a boolean"
	}
	return "another type" // never a Go type name
}
