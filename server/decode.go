package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/elevatehq/elevate/server/auth"
)

// MaxBodyBytes bounds request bodies (64 KiB); larger ones get 413.
const MaxBodyBytes = 64 << 10

// decodeJSON reads r's body into dst, a pointer to a struct, strictly:
// Content-Type application/json (415 otherwise), at most MaxBodyBytes
// (413), exactly one JSON object whose keys are dst's fields with the
// exact spelling and each at most once (400 unknown-field, 400
// invalid-request), values of the right type (400), and nothing after it
// (400 trailing-data). An empty body is accepted, as {}, only when
// allowEmpty is set (endpoints whose fields are all optional).
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any, allowEmpty bool) error {
	ct := r.Header.Get("Content-Type")
	if ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMedia,
				"Content-Type must be application/json, not %q", clip(ct))
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "the body must be UTF-8 JSON, not charset %q", clip(cs))
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "the request body is larger than %d KiB", MaxBodyBytes>>10)
		}
		return badRequest("reading the request body failed: %v", err)
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		if allowEmpty {
			return nil
		}
		return errorf(http.StatusBadRequest, CodeEmptyBody, "the request needs a JSON object body")
	}
	if ct == "" {
		return errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "Content-Type must be application/json; the request sent none")
	}
	if body[0] != '{' {
		if !json.Valid(body) {
			return errorf(http.StatusBadRequest, CodeMalformedJSON, "the body is not valid JSON")
		}
		return badRequest("the body must be a JSON object")
	}
	if err := checkKeys(body, dst); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if rest := bytes.TrimSpace(body[dec.InputOffset():]); len(rest) > 0 {
		return errorf(http.StatusBadRequest, CodeTrailingData, "the body has data after the JSON object; send exactly one object")
	}
	return nil
}

// checkKeys rejects top-level keys that are not dst's JSON field names
// spelled exactly (encoding/json would match them case-insensitively) and
// keys given twice (encoding/json would keep the last silently).
func checkKeys(body []byte, dst any) error {
	known := map[string]bool{}
	t := reflect.TypeOf(dst).Elem()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			known[name] = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // {
		return jsonError(err)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return jsonError(err)
		}
		key, _ := tok.(string)
		if !known[key] {
			return errorf(http.StatusBadRequest, CodeUnknownField, "unknown field %q", clip(key))
		}
		if seen[key] {
			return badRequest("field %q is given twice", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return jsonError(err)
		}
	}
	return nil
}

// jsonError explains a decoding error.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return errorf(http.StatusBadRequest, CodeMalformedJSON, "the body is not valid JSON (at byte %d): %v", syn.Offset, syn)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errorf(http.StatusBadRequest, CodeMalformedJSON, "the body is not valid JSON: it ends too early")
	case errors.As(err, &typ):
		return badRequest("field %q must be a JSON %s, not %s", typ.Field, jsonKind(typ.Type), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return errorf(http.StatusBadRequest, CodeUnknownField, "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return errorf(http.StatusBadRequest, CodeMalformedJSON, "the body is not valid JSON: %v", err)
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64, reflect.Float64:
		return "number"
	}
	return t.String()
}

// clip shortens a caller-supplied value before it goes into a message.
func clip(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeError writes the API's error body for err.
func writeError(w http.ResponseWriter, err error) {
	ae := asAPIError(err)
	auth.WriteError(w, ae.Status, ae.Code, ae.Message)
}
