//go:build js && wasm

package main

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// warmPackages are the protobuf packages whose messages the page decodes
// and encodes between a scan and its chats: the wire protocol's and
// libsignal's.
var warmPackages = map[protoreflect.FullName]bool{"linksim.v1": true, "textsecure": true}

// warmBatch is how many message types warmUp prepares between pauses.
const warmBatch = 8

// warmUp pays, while the first QR code waits for a scan, costs that the
// first use of each thing would otherwise add between the scan and the
// chats shown: protobuf builds a message type's codec on its first encode
// or decode (reflection, slow in WebAssembly), and the first local time
// formatted loads the time zone. It pauses between batches, as the
// registration keys do, so the page answers the scan meanwhile.
func warmUp() {
	start := time.Now()
	var types []protoreflect.MessageType
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		if warmPackages[mt.Descriptor().ParentFile().Package()] {
			types = append(types, mt)
		}
		return true
	})
	for i, mt := range types {
		if i%warmBatch == 0 {
			time.Sleep(time.Millisecond)
		}
		proto.Size(mt.New().Interface())
	}
	time.Now().Local()
	console("log", fmt.Sprintf("warmed %d message codecs in %s", len(types), time.Since(start).Round(time.Millisecond)))
}
