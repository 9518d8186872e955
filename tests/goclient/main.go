// goclient: a TLS client built from Go's crypto/tls — the stack of the Go SDK (kms-go/kes)
// and MinIO — for pykes's tests. It opens -n connections one after another to -addr,
// each a full HTTP/1.1 exchange (GET -path, Connection: close) read to EOF, and prints
// one JSON line per connection: bytes read off the socket, whether the TLS session was
// resumed, the TLS version and the HTTP status line. With -cache the client keeps a
// session cache (and so offers psk_key_exchange_modes, as MinIO does); without it,
// like kesload and the Go SDK's default, it offers none.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
)

type countingConn struct {
	net.Conn
	read atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// countingCache counts the tickets the server sent (Put is called once per ticket).
type countingCache struct {
	tls.ClientSessionCache
	puts atomic.Int64
}

func (c *countingCache) Put(key string, cs *tls.ClientSessionState) {
	c.puts.Add(1)
	c.ClientSessionCache.Put(key, cs)
}

type result struct {
	BytesRead  int64  `json:"bytes_read"`
	Resumed    bool   `json:"resumed"`
	Version    string `json:"version"`
	StatusLine string `json:"status_line"`
	Tickets    int64  `json:"tickets"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:7373", "server address")
	caFile := flag.String("ca", "", "server certificate (PEM) to trust")
	certFile := flag.String("cert", "", "client certificate (PEM)")
	keyFile := flag.String("key", "", "client private key (PEM)")
	path := flag.String("path", "/v1/status", "request path")
	cache := flag.Bool("cache", false, "keep a TLS session cache (offer resumption)")
	n := flag.Int("n", 1, "connections, one after another")
	flag.Parse()

	pem, err := os.ReadFile(*caFile)
	if err != nil {
		fail(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		fail(fmt.Errorf("no certificate in %s", *caFile))
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fail(err)
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		fail(err)
	}
	config := &tls.Config{
		RootCAs:      roots,
		Certificates: []tls.Certificate{cert},
		ServerName:   host,
		NextProtos:   []string{"http/1.1"},
		MinVersion:   tls.VersionTLS12,
	}
	var sessions *countingCache
	if *cache {
		sessions = &countingCache{ClientSessionCache: tls.NewLRUClientSessionCache(8)}
		config.ClientSessionCache = sessions
	}
	out := json.NewEncoder(os.Stdout)
	for i := 0; i < *n; i++ {
		before := int64(0)
		if sessions != nil {
			before = sessions.puts.Load()
		}
		r, err := exchange(*addr, config, *path)
		if err != nil {
			fail(err)
		}
		if sessions != nil {
			r.Tickets = sessions.puts.Load() - before
		}
		if err := out.Encode(r); err != nil {
			fail(err)
		}
	}
}

func exchange(addr string, config *tls.Config, path string) (result, error) {
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		return result{}, err
	}
	counted := &countingConn{Conn: raw}
	conn := tls.Client(counted, config)
	defer conn.Close()
	if err := conn.Handshake(); err != nil {
		return result{}, err
	}
	request := "GET " + path + " HTTP/1.1\r\nHost: " + config.ServerName + "\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(conn, request); err != nil {
		return result{}, err
	}
	body, err := io.ReadAll(bufio.NewReader(conn))
	if err != nil {
		return result{}, err
	}
	state := conn.ConnectionState()
	statusLine, _, _ := strings.Cut(string(body), "\r\n")
	return result{
		BytesRead:  counted.read.Load(),
		Resumed:    state.DidResume,
		Version:    tls.VersionName(state.Version),
		StatusLine: statusLine,
	}, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "goclient:", err)
	os.Exit(1)
}
