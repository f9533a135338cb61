//go:build !js

package e2e

import "github.com/segmentio/encoding/json"

var jsonMarshal, jsonUnmarshal = json.Marshal, json.Unmarshal
