//go:build js && wasm

package main

import (
	"context"
	"errors"
	"io"

	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/webclient/app"
	"github.com/linksim/linksim/webclient/mirror"
)

// core is the web client core the UI runs: webclient/app (multi-device,
// the default) or webclient/mirror (?topology=mirror).
type core interface {
	Start() error
	Screen() (app.Screen, device.Ref, error)
	Device() *device.Device
	Reload()
	Logout(ctx context.Context) error
	UseHere() error
}

// source is what the main view shows and sends through: a multi-device
// client's own device, or what a mirror client's phone sends it.
type source interface {
	Contacts() map[string]string
	Chats() []device.Chat
	Messages(peer string) []device.Message
	MarkRead(ctx context.Context, peer string) error
	SendTextID(ctx context.Context, id, peer, text string) error
	SendMediaID(ctx context.Context, id, peer string, f device.MediaFile) error
	Download(ctx context.Context, msg device.Message) (io.ReadCloser, error)
}

// mirrorSource is a mirror client as the main view's source. Media stay on
// the phone.
type mirrorSource struct{ *mirror.Client }

var errOnPhone = errors.New("media are sent and opened on the phone in this topology")

func (mirrorSource) SendMediaID(context.Context, string, string, device.MediaFile) error {
	return errOnPhone
}

func (mirrorSource) Download(context.Context, device.Message) (io.ReadCloser, error) {
	return nil, errOnPhone
}
