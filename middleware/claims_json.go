package middleware

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// maxJSONDepth bounds the nesting of token headers, claims and
// introspection responses (threat model A20).
const maxJSONDepth = 32

var errDuplicateName = errors.New("duplicate member name")

// decodeObject decodes a JSON object strictly: valid UTF-8, no duplicate
// member names at any depth (RFC 7515 §4, RFC 7519 §4; Go's decoder would
// keep the last one), nesting at most maxJSONDepth, nothing after the
// object. Numbers become float64.
func decodeObject(data []byte) (map[string]any, error) {
	if err := checkJSON(data); err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// checkJSON validates data as one JSON object under the rules of
// decodeObject.
func checkJSON(data []byte) error {
	if !utf8.Valid(data) {
		return errors.New("invalid UTF-8")
	}
	s := jsonScanner{data: data}
	s.skipSpace()
	if s.pos >= len(s.data) || s.data[s.pos] != '{' {
		return errors.New("not a JSON object")
	}
	if err := s.value(0); err != nil {
		return err
	}
	s.skipSpace()
	if s.pos != len(s.data) {
		return fmt.Errorf("data after the JSON object at offset %d", s.pos)
	}
	return nil
}

type jsonScanner struct {
	data []byte
	pos  int
}

func (s *jsonScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *jsonScanner) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at offset %d: %s", s.pos, fmt.Sprintf(format, args...))
}

func (s *jsonScanner) value(depth int) error {
	if depth > maxJSONDepth {
		return s.errorf("nesting deeper than %d", maxJSONDepth)
	}
	s.skipSpace()
	if s.pos >= len(s.data) {
		return s.errorf("unexpected end")
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return s.object(depth)
	case c == '[':
		return s.array(depth)
	case c == '"':
		_, _, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	default:
		return s.errorf("unexpected character %q", c)
	}
}

func (s *jsonScanner) literal(lit string) error {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(lit)) {
		return s.errorf("bad literal")
	}
	s.pos += len(lit)
	return nil
}

func (s *jsonScanner) number() error {
	d := s.data
	i := s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return s.errorf("bad number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		start := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == start {
			return s.errorf("bad number")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		start := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == start {
			return s.errorf("bad number")
		}
	}
	s.pos = i
	return nil
}

// str scans a string starting at the opening quote and returns its raw
// content and whether it contains escapes.
func (s *jsonScanner) str() (raw []byte, escaped bool, err error) {
	d := s.data
	i := s.pos + 1
	start := i
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			s.pos = i + 1
			return d[start:i], escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(d) {
				return nil, false, s.errorf("unterminated escape")
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) {
					return nil, false, s.errorf("short unicode escape")
				}
				for _, h := range d[i+2 : i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return nil, false, s.errorf("bad unicode escape")
					}
				}
				i += 6
			default:
				return nil, false, s.errorf("bad escape")
			}
		case c < 0x20:
			return nil, false, s.errorf("control character in string")
		default:
			i++
		}
	}
	return nil, false, s.errorf("unterminated string")
}

func (s *jsonScanner) array(depth int) error {
	s.pos++ // [
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return nil
	}
	for {
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return s.errorf("unterminated array")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return s.errorf("expected , or ]")
		}
	}
}

func (s *jsonScanner) object(depth int) error {
	s.pos++ // {
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return nil
	}
	var small [16]string
	names := small[:0]
	var many map[string]struct{}
	for {
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return s.errorf("expected member name")
		}
		raw, escaped, err := s.str()
		if err != nil {
			return err
		}
		name := string(raw)
		if escaped {
			// Compare names as decoded: "e\u0078p" is "exp".
			if err := json.Unmarshal(s.data[s.pos-len(raw)-2:s.pos], &name); err != nil {
				return s.errorf("bad member name")
			}
		}
		if many != nil {
			if _, dup := many[name]; dup {
				return fmt.Errorf("%w %q", errDuplicateName, logTrunc(name, 32))
			}
			many[name] = struct{}{}
		} else {
			for _, n := range names {
				if n == name {
					return fmt.Errorf("%w %q", errDuplicateName, logTrunc(name, 32))
				}
			}
			if len(names) == cap(small) {
				many = make(map[string]struct{}, 2*len(names))
				for _, n := range names {
					many[n] = struct{}{}
				}
				many[name] = struct{}{}
			} else {
				names = append(names, name)
			}
		}
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return s.errorf("expected :")
		}
		s.pos++
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return s.errorf("unterminated object")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.errorf("expected , or }")
		}
	}
}

// truncate shortens s for log messages.
func logTrunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
