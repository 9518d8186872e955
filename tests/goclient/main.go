// goclient: a client built from Go's crypto/tls and net/http — the stack of the Go SDK
// (kms-go/kes) and MinIO — for pykes's tests. Two modes:
//
// -mode=tls (default): -n connections one after another to -addr, each a full HTTP/1.1
// exchange (GET -path, Connection: close) read to EOF; one JSON line per connection:
// bytes read off the socket, whether the TLS session was resumed, the TLS version and
// the HTTP status line. With -cache the client keeps a session cache (and so offers
// psk_key_exchange_modes, as MinIO does); without it, like kesload and the Go SDK's
// default, it offers none.
//
// -mode=api: net/http's client (HTTP/2 unless -http1) with -concurrency goroutines
// sharing its connection pool, each doing generate -> decrypt round trips on key
// -keyname until -requests generate calls are done; checks that every decrypt returns
// the generated plaintext; prints one JSON summary line.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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
	certFile := flag.String("cert", "", "client certificate (PEM); none: send no certificate")
	keyFile := flag.String("key", "", "client private key (PEM)")
	path := flag.String("path", "/v1/status", "request path")
	cache := flag.Bool("cache", false, "keep a TLS session cache (offer resumption)")
	n := flag.Int("n", 1, "connections, one after another")
	mode := flag.String("mode", "tls", "tls or api")
	keyName := flag.String("keyname", "goclient-key", "api mode: the key to use")
	concurrency := flag.Int("concurrency", 16, "api mode: concurrent goroutines")
	requests := flag.Int("requests", 200, "api mode: generate calls in all")
	http1 := flag.Bool("http1", false, "api mode: HTTP/1.1 instead of HTTP/2")
	flag.Parse()

	pem, err := os.ReadFile(*caFile)
	if err != nil {
		fail(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		fail(fmt.Errorf("no certificate in %s", *caFile))
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		fail(err)
	}
	config := &tls.Config{
		RootCAs:    roots,
		ServerName: host,
		NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS12,
	}
	if *certFile != "" { // without -cert the client offers no certificate
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			fail(err)
		}
		config.Certificates = []tls.Certificate{cert}
	}
	if *mode == "api" {
		summary := runAPI(*addr, config, *keyName, *concurrency, *requests, *http1)
		if err := json.NewEncoder(os.Stdout).Encode(summary); err != nil {
			fail(err)
		}
		return
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

type apiSummary struct {
	Generated  int64    `json:"generated"`
	Decrypted  int64    `json:"decrypted"`
	Mismatches int64    `json:"mismatches"`
	Errors     []string `json:"errors"`
	Protocols  []string `json:"protocols"`
	CreateCode int      `json:"create_status"`
}

type dataKey struct {
	Plaintext  []byte `json:"plaintext"`
	Ciphertext []byte `json:"ciphertext"`
}

func runAPI(addr string, config *tls.Config, keyName string, concurrency, requests int, http1 bool) apiSummary {
	config = config.Clone()
	config.NextProtos = nil // net/http offers h2 and http/1.1 itself
	transport := &http.Transport{
		TLSClientConfig:     config,
		ForceAttemptHTTP2:   !http1,
		MaxIdleConnsPerHost: concurrency,
	}
	if http1 {
		transport.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	base := "https://" + addr
	var summary apiSummary
	var mu sync.Mutex
	protocols := map[string]bool{}
	record := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if len(summary.Errors) < 10 {
			summary.Errors = append(summary.Errors, err.Error())
		}
	}
	post := func(path string, body any, out any) error {
		payload, err := json.Marshal(body)
		if err != nil {
			return err
		}
		resp, err := client.Post(base+path, "application/json", bytes.NewReader(payload))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		mu.Lock()
		protocols[resp.Proto] = true
		mu.Unlock()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s %s", path, resp.Status, strings.TrimSpace(string(data)))
		}
		if out == nil {
			return nil
		}
		return json.Unmarshal(data, out)
	}
	resp, err := client.Post(base+"/v1/key/create/"+keyName, "application/json", nil)
	if err != nil {
		record(err)
	} else {
		summary.CreateCode = resp.StatusCode
		resp.Body.Close()
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			context := []byte(fmt.Sprintf("goclient worker %d", w))
			for next.Add(1) <= int64(requests) {
				var key dataKey
				if err := post("/v1/key/generate/"+keyName, map[string][]byte{"context": context}, &key); err != nil {
					record(err)
					continue
				}
				atomic.AddInt64(&summary.Generated, 1)
				var plain struct {
					Plaintext []byte `json:"plaintext"`
				}
				body := map[string][]byte{"ciphertext": key.Ciphertext, "context": context}
				if err := post("/v1/key/decrypt/"+keyName, body, &plain); err != nil {
					record(err)
					continue
				}
				atomic.AddInt64(&summary.Decrypted, 1)
				if len(key.Plaintext) != 32 || !bytes.Equal(plain.Plaintext, key.Plaintext) {
					atomic.AddInt64(&summary.Mismatches, 1)
				}
			}
		}(w)
	}
	wg.Wait()
	for proto := range protocols {
		summary.Protocols = append(summary.Protocols, proto)
	}
	return summary
}
