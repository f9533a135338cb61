package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// protoErr is a request's failure as the protocol names it (an Error frame).
type protoErr struct {
	code  pb.ErrorCode
	msg   string
	lists *pb.DeviceLists // with STALE_DEVICE_LIST
}

func (e *protoErr) Error() string { return e.code.String() + ": " + e.msg }

// maxErrorMessage bounds Error.message: a message echoing an oversized
// field is cut, so that the answer still fits a frame.
const maxErrorMessage = 1024

func fail(code pb.ErrorCode, format string, args ...any) error {
	return &protoErr{code: code, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return fail(pb.ErrorCode_BAD_REQUEST, format, args...)
}

func errFrame(id uint64, code pb.ErrorCode, msg string) *pb.Frame {
	return &pb.Frame{Id: id, Body: &pb.Frame_Error{Error: &pb.Error{Code: code, Message: msg}}}
}

func okFrame() *pb.Frame { return &pb.Frame{Body: &pb.Frame_Ok{Ok: &pb.Ok{}}} }

// errorFrame turns a handler's error into the Error frame to answer with.
// An error that is not a protoErr is the relay's own failure: it is logged
// and the client sees only INTERNAL.
func (c *conn) errorFrame(id uint64, err error) *pb.Frame {
	return errorFrameLogged(c.logger(), id, err)
}

// errorFrameLogged is errorFrame logging to log.
func errorFrameLogged(log *slog.Logger, id uint64, err error) *pb.Frame {
	var pe *protoErr
	if errors.As(err, &pe) {
		msg := cutUTF8(pe.msg, maxErrorMessage)
		return &pb.Frame{Id: id, Body: &pb.Frame_Error{Error: &pb.Error{Code: pe.code, Message: msg, DeviceLists: pe.lists}}}
	}
	log.Error("request failed", "id", id, "err", err)
	return errFrame(id, pb.ErrorCode_INTERNAL, "internal error")
}

// cutUTF8 cuts s to at most n bytes, on a character boundary, marking the
// cut with "…".
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	i := n - len(mark)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + mark
}

var bodyOneof = (&pb.Frame{}).ProtoReflect().Descriptor().Oneofs().ByName("body")

// bodyName is the frame's body field name ("send", "ack", ...), for logs and
// metrics.
func bodyName(f *pb.Frame) string {
	if fd := f.ProtoReflect().WhichOneof(bodyOneof); fd != nil {
		return string(fd.Name())
	}
	return "none"
}

// handler answers one request of a registered device. A nil frame with a
// nil error means the handler answered (or will answer) by itself.
type handler func(c *conn, me store.Address, id uint64, f *pb.Frame) (*pb.Frame, error)

// deviceRequests are the requests that need a registered device.
var deviceRequests = map[protoreflect.Name]handler{
	"hello":              (*conn).onHello,
	"upload_prekeys":     (*conn).onUploadPreKeys,
	"get_devices":        (*conn).onGetDevices,
	"fetch_bundles":      (*conn).onFetchBundles,
	"pair_scan":          (*conn).onPairScan,
	"send":               (*conn).onSend,
	"send_receipt":       (*conn).onSendReceipt,
	"set_profile":        (*conn).onSetProfile,
	"get_profile":        (*conn).onGetProfile,
	"remove_devices":     (*conn).onRemoveDevices,
	"media_upload":       (*conn).onMediaUpload,
	"set_key_index_list": (*conn).onSetKeyIndexList,
}

// handle answers one frame read from the connection.
func (c *conn) handle(f *pb.Frame) {
	me, isDevice := c.device()
	if ack := f.GetAck(); ack != nil {
		// Acks get no answer; from a connection that is no device they
		// mean nothing and are dropped.
		if isDevice {
			c.onAck(me, ack)
		}
		return
	}
	id := f.GetId()
	if id == 0 {
		c.answer(0, errFrame(0, pb.ErrorCode_BAD_REQUEST, "request id 0"))
		return
	}
	var resp *pb.Frame
	var err error
	name := protoreflect.Name(bodyName(f))
	switch body := f.GetBody().(type) {
	case *pb.Frame_Ping:
		resp = &pb.Frame{Body: &pb.Frame_Pong{Pong: &pb.Pong{ServerUnixMs: nowMs()}}}
	case *pb.Frame_Register:
		resp, err = c.onRegister(id, body.Register)
	case *pb.Frame_PairStart:
		resp, err = c.onPairStart(id)
	case *pb.Frame_PairFinish:
		resp, err = c.onPairFinish(id, body.PairFinish)
	case *pb.Frame_PairReject:
		resp, err = c.onPairReject(id, body.PairReject)
	default:
		h, ok := deviceRequests[name]
		switch {
		case !ok:
			err = badRequest("%s is not a request", name)
		case !isDevice:
			err = fail(pb.ErrorCode_UNAUTHENTICATED, "%s needs a registered device", name)
		default:
			resp, err = h(c, me, id, f)
		}
	}
	if err != nil {
		c.logger().Debug("request refused", "id", id, "type", string(name), "err", err)
		c.send(c.errorFrame(id, err))
		return
	}
	if resp != nil {
		c.answer(id, resp)
	}
}
