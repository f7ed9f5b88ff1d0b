package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
)

// API keys and tenants.
//
// With Config.APIKeys set, every endpoint but /health and the model list
// needs one of the keys, sent as llama-server and the OpenAI clients send
// it: "Authorization: Bearer KEY" (or "X-Api-Key: KEY"); otherwise it is a
// 401 invalid_api_key. Keys are compared by their SHA-256 in constant time.
//
// A tenant is who may share cached tokens: the key a request authenticated
// with, its "cache_salt" field, or both. Every cache that reuses tokens
// across requests (the prefix cache, chunk caches) is keyed by the tenant
// (sched.Request.Tenant), so one tenant never gets another's cached tokens,
// which a shared prefix cache would leak through timing.

// publicPaths answer without a key, as llama-server's do: health checks
// and the model list come from load balancers and clients probing.
var publicPaths = map[string]bool{"/health": true, "/v1/models": true}

type keyCtx struct{}

// keyring holds the SHA-256 of each accepted key.
type keyring [][sha256.Size]byte

func newKeyring(keys []string) keyring {
	var k keyring
	for _, key := range keys {
		if key = strings.TrimSpace(key); key != "" {
			k = append(k, sha256.Sum256([]byte(key)))
		}
	}
	return k
}

// match returns the hash of the key that matches, comparing every key in
// constant time.
func (k keyring) match(key string) ([sha256.Size]byte, bool) {
	h := sha256.Sum256([]byte(key))
	ok := 0
	for i := range k {
		ok |= subtle.ConstantTimeCompare(h[:], k[i][:])
	}
	return h, ok == 1
}

// requestKey is the key a request carries: a Bearer token, else X-Api-Key.
func requestKey(r *http.Request) string {
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, token, ok := strings.Cut(strings.TrimSpace(a), " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(token)
		}
		return ""
	}
	return strings.TrimSpace(r.Header.Get("X-Api-Key"))
}

// authenticate checks the request's key when the server has keys, and
// records which key it was for tenantOf. Requests to public paths pass.
func (s *Server) authenticate(r *http.Request) (*http.Request, *apiError) {
	if len(s.keys) == 0 {
		return r, nil
	}
	if publicPaths[r.URL.Path] {
		return r, nil
	}
	key := requestKey(r)
	h, ok := s.keys.match(key)
	if key == "" || !ok {
		msg := "invalid API key"
		if key == "" {
			msg = "an API key is required (Authorization: Bearer KEY)"
		}
		return r, &apiError{Status: http.StatusUnauthorized, Type: "authentication_error", Code: ptr("invalid_api_key"), Message: msg}
	}
	return r.WithContext(context.WithValue(r.Context(), keyCtx{}, h)), nil
}

// tenantOf is the tenant of a request: derived from the API key it
// authenticated with and from its cache_salt (salt), combined when both
// are given, "" when neither is (the server's one shared tenant). Only
// hashes appear in it, never a key; access logs print it. Anything that
// keeps tokens of one request for another keys them by it.
func tenantOf(r *http.Request, salt string) string {
	var parts []string
	if h, ok := r.Context().Value(keyCtx{}).([sha256.Size]byte); ok {
		parts = append(parts, "key:"+hex.EncodeToString(h[:8]))
	}
	if salt != "" {
		h := sha256.Sum256([]byte("kvgo cache_salt\x00" + salt))
		parts = append(parts, "salt:"+hex.EncodeToString(h[:8]))
	}
	return strings.Join(parts, "/")
}
