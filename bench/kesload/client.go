package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// client sends the load: one keep-alive http.Client shared by all workers, or with
// newConn a fresh transport (new TCP connection, full TLS handshake) per request.
type client struct {
	base    string
	tls     *tls.Config
	http2   bool
	newConn bool
	idle    int // idle connections kept per host: one per worker and some slack
	shared  *http.Client
	enclave string // the Kes-Enclave header of every request ("": none)
}

func newClient(base string, tlsConfig *tls.Config, http2, newConn bool, workers int, enclave string) *client {
	c := &client{base: base, tls: tlsConfig, http2: http2, newConn: newConn, idle: workers + 16, enclave: enclave}
	c.shared = &http.Client{Transport: c.transport()}
	return c
}

func (c *client) transport() *http.Transport {
	t := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     c.tls.Clone(), // no session cache: every handshake is a full one
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        c.idle,
		MaxIdleConnsPerHost: c.idle,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   c.http2,
		DisableKeepAlives:   c.newConn,
	}
	if !c.http2 {
		// A non-nil empty map keeps net/http from upgrading to HTTP/2.
		t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		t.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	return t
}

// reply is a complete response: status, body and the protocol it came over.
type reply struct {
	status int
	body   []byte
	proto  string
}

func (c *client) send(ctx context.Context, method, path string, body []byte) (reply, error) {
	httpClient := c.shared
	if c.newConn {
		t := c.transport()
		defer t.CloseIdleConnections()
		httpClient = &http.Client{Transport: t}
	}
	var content io.Reader
	if body != nil {
		content = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, content)
	if err != nil {
		return reply{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType(path))
	}
	if c.enclave != "" { // as the 2023 KES SDK selects an enclave
		req.Header.Set("Kes-Enclave", c.enclave)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, body: data, proto: resp.Proto}, err
}

// contentType is a request body's: the KMS API's frames are protobuf, the KES API's JSON.
func contentType(path string) string {
	if strings.HasPrefix(path, "/v1/kms/") {
		return "application/octet-stream"
	}
	return "application/json"
}

// dataKey is a generate answer; decrypt rows send its ciphertext back.
type dataKey struct {
	Plaintext  []byte `json:"plaintext"`
	Ciphertext []byte `json:"ciphertext"`
}

// prepare makes sure the key exists (a 403 on create is taken to mean the identity
// may use, but not create, it) and generates one data key. It returns the data key
// and the protocol the server answered with.
func (c *client) prepare(ctx context.Context, keyName string) (dataKey, string, error) {
	var dek dataKey
	created, err := c.send(ctx, http.MethodPost, "/v1/key/create/"+url.PathEscape(keyName), nil)
	if err != nil {
		return dek, "", fmt.Errorf("create key: %w", err)
	}
	switch {
	case created.status == http.StatusOK:
		fmt.Printf("created key %q\n", keyName)
	case created.status == http.StatusBadRequest && bytes.Contains(created.body, []byte("already exist")):
		fmt.Printf("key %q exists\n", keyName)
	case created.status == http.StatusForbidden:
		fmt.Printf("may not create key %q (HTTP 403): using it as it is\n", keyName)
	default:
		return dek, "", fmt.Errorf("create key: %w", statusError(created))
	}
	generated, err := c.send(ctx, http.MethodPost, "/v1/key/generate/"+url.PathEscape(keyName), []byte("{}"))
	if err == nil && generated.status != http.StatusOK {
		err = statusError(generated)
	}
	if err == nil {
		err = json.Unmarshal(generated.body, &dek)
	}
	if err != nil {
		return dek, "", fmt.Errorf("generate a data key: %w", err)
	}
	return dek, generated.proto, nil
}

// statusError names a failed answer by its status and, as the KES SDK does, the
// "message" of a JSON error body (or else the body itself), on one line.
func statusError(r reply) error {
	var answer struct {
		Message string `json:"message"`
	}
	text := string(r.body)
	if json.Unmarshal(r.body, &answer) == nil && answer.Message != "" {
		text = answer.Message
	}
	return fmt.Errorf("HTTP %d: %s", r.status, oneLine(text, 120))
}

// oneLine collapses line breaks and runs of spaces and cuts the text to limit bytes.
func oneLine(text string, limit int) string {
	text = strings.Join(strings.Fields(text), " ")
	if len(text) > limit {
		return text[:limit]
	}
	return text
}

// operation is the one request a row repeats, and how its answer is judged.
type operation struct {
	method string
	path   string
	body   []byte
	check  func(reply) error
}

func expectOK(r reply) error {
	if r.status != http.StatusOK {
		return statusError(r)
	}
	return nil
}

// newOperation builds the request of --op. With verify the answer is decoded and
// checked too (client CPU the plain run does not spend).
func newOperation(op, keyName, enclave string, batch int, dek dataKey, verify bool) (operation, error) {
	key := url.PathEscape(keyName)
	if batch != 1 && op != "kms-generate" {
		return operation{}, fmt.Errorf("--batch is for --op kms-generate only")
	}
	switch op {
	case "kms-generate":
		return newKMSGenerate(keyName, enclave, batch)
	case "generate":
		o := operation{http.MethodPost, "/v1/key/generate/" + key, []byte("{}"), expectOK}
		if verify {
			o.check = answerHas(func(d dataKey) bool { return len(d.Plaintext) == 32 && len(d.Ciphertext) > 0 })
		}
		return o, nil
	case "decrypt":
		body, _ := json.Marshal(map[string][]byte{"ciphertext": dek.Ciphertext})
		o := operation{http.MethodPost, "/v1/key/decrypt/" + key, body, expectOK}
		if verify {
			o.check = answerHas(func(d dataKey) bool { return bytes.Equal(d.Plaintext, dek.Plaintext) })
		}
		return o, nil
	case "encrypt":
		plaintext := make([]byte, 32)
		if _, err := rand.Read(plaintext); err != nil {
			return operation{}, err
		}
		body, _ := json.Marshal(map[string][]byte{"plaintext": plaintext})
		o := operation{http.MethodPost, "/v1/key/encrypt/" + key, body, expectOK}
		if verify {
			o.check = answerHas(func(d dataKey) bool { return len(d.Ciphertext) > len(plaintext) })
		}
		return o, nil
	case "status":
		return operation{http.MethodGet, "/v1/status", nil, expectOK}, nil
	}
	return operation{}, fmt.Errorf("unknown --op %q: generate, decrypt, encrypt, status or kms-generate", op)
}

func answerHas(good func(dataKey) bool) func(reply) error {
	return func(r reply) error {
		if err := expectOK(r); err != nil {
			return err
		}
		var d dataKey
		if err := json.Unmarshal(r.body, &d); err != nil || !good(d) {
			return fmt.Errorf("unexpected answer (%d bytes)", len(r.body)) // no key material in logs
		}
		return nil
	}
}
