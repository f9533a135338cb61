package device

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// marshalMessage is json.Marshal(m), byte for byte, written without
// encoding/json for a message without media: encoding/json builds its
// encoder for a type by reflection on first use, and in the web app that
// was most of the time the phone's history took to store after a scan
// (docs/performance.md, "QR visible → chats shown, session 9").
// Stored messages are still read by json.Unmarshal.
func marshalMessage(m Message) ([]byte, error) {
	if m.Media != nil {
		return json.Marshal(m)
	}
	sent, err := m.Sent.MarshalJSON() // what encoding/json calls for it
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 96+len(m.ID)+len(m.From)+len(m.Text))
	b = append(b, `{"ID":`...)
	b = appendJSONString(b, m.ID)
	b = append(b, `,"From":`...)
	b = appendJSONString(b, m.From)
	b = append(b, `,"Text":`...)
	b = appendJSONString(b, m.Text)
	b = append(b, `,"Sent":`...)
	b = append(b, sent...)
	b = append(b, `,"Outgoing":`...)
	b = strconv.AppendBool(b, m.Outgoing)
	b = append(b, `,"Status":`...)
	b = strconv.AppendInt(b, int64(m.Status), 10)
	if m.Placeholder {
		b = append(b, `,"Placeholder":true`...)
	}
	if m.Notice {
		b = append(b, `,"Notice":true`...)
	}
	return append(b, '}'), nil
}

// appendJSONString appends s quoted as json.Marshal quotes it: HTML's <, >
// and & escaped, invalid UTF-8 as U+FFFD, and U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0 // s[start:i] is still to be copied as is
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, `\b`...)
			case '\f':
				b = append(b, `\f`...)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
