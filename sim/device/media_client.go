//go:build !js

package device

import (
	"context"
	"net/http"
	"time"
)

// mediaHTTP is shared by every device: connections are pooled per relay
// address (each device's fault path has its own), and nothing needs closing
// when a device closes.
var mediaHTTP = &http.Client{Transport: &http.Transport{
	Proxy: http.ProxyFromEnvironment,
	// A refused upload (token expired, too large) is answered before
	// the body is sent.
	ExpectContinueTimeout: time.Second,
	IdleConnTimeout:       30 * time.Second,
	MaxIdleConnsPerHost:   4,
}}

func roundTrip(ctx context.Context, r mediaRequest) (*mediaResponse, error) {
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, r.body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = r.size
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := mediaHTTP.Do(req)
	if err != nil {
		return nil, err
	}
	return &mediaResponse{status: resp.StatusCode, contentRange: resp.Header.Get("Content-Range"), body: resp.Body}, nil
}
