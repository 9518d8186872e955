// The Go KES model (--work kes): the per-request work of the Go KES server for the
// bench's routes, written with the standard library on the same net/http + crypto/tls
// stack as the floor. Go KES itself cannot be built here (its modules are not
// reachable), so this is the closest measurable stand-in. What it does, and where Go
// KES does it (minio/kes, read at server.go f189c28, internal/api/api.go 1a30d61,
// auth.go 0e49f95, keystore.go 9b08d07, internal/cache/cow.go 0b32a5d,
// internal/crypto/key.go 1496415, internal/metric/metric.go b863fc1):
//
//   - the server's handler loads the current http.ServeMux from an atomic pointer;
//     routes are prefix patterns ("/v1/key/generate/");
//   - api.Route.ServeHTTP: a response wrapper, time.Now, the method check (POST accepted
//     for PUT routes), strings.CutPrefix for the key name, http.MaxBytesReader (1 MB),
//     a 15 s write deadline through http.ResponseController;
//   - authentication: the state from an atomic pointer; the identity recomputed per
//     request (SHA-256 of the certificate's SubjectPublicKeyInfo, hex); the admin
//     compare (the bench's API key is the admin); an api.Request allocated;
//   - metrics: the Count and Latency middleware of internal/metric — an active-requests
//     gauge, a status-recording writer each, a per-code counter looked up by label and a
//     response-time histogram. client_golang is not in the standard library: its
//     atomic float gauge, label hash + RLock'd map lookup and histogram observation are
//     reproduced below, not imported;
//   - the handler: validName (a rune loop, ≤ 80), the key from a copy-on-write map
//     behind an atomic pointer (entry.Used stored on every hit), the request body by
//     encoding/json, crypto/rand reads (32 bytes for a DEK, 28 for IV ‖ nonce),
//     HMAC-SHA-256(key, IV) → aes.NewCipher → cipher.NewGCM → Seal/Open, and the answer
//     by json.NewEncoder(w).Encode after Content-Type and WriteHeader.
//
// Not modelled, because Go KES does not do it on these routes: audit events (only
// create, import and delete are audited), policy matching (the admin skips it), the
// keystore (a cache hit). Not modelled either: anything the newest Go KES may do that
// the stored sources do not show (the newest state.go, which wires the metrics, is not
// stored; the wiring assumed is Count(Latency(route)), as PR #444 restored it).
package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/fnv"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

const (
	modelMaxBody = 1_000_000
	modelTimeout = 15 * time.Second
	randSize     = 28 // IV (16) ‖ nonce (12)
)

// ---------------------------------------------------------------- keys and cache

type secretKey struct {
	key [32]byte
}

type keyVersion struct {
	Key       secretKey
	HMACKey   [32]byte
	CreatedAt time.Time
	CreatedBy string
}

type cacheEntry struct {
	Key  keyVersion
	Used atomic.Bool
}

// cowCache is internal/cache.Cow: lock-free reads of a map that writers copy.
type cowCache struct {
	mu  sync.Mutex
	ptr atomic.Pointer[map[string]*cacheEntry]
}

func (c *cowCache) get(name string) (*cacheEntry, bool) {
	m := c.ptr.Load()
	if m == nil {
		return nil, false
	}
	e, ok := (*m)[name]
	return e, ok
}

func (c *cowCache) add(name string, e *cacheEntry) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.ptr.Load()
	next := map[string]*cacheEntry{}
	if old != nil {
		if _, ok := (*old)[name]; ok {
			return false
		}
		for k, v := range *old {
			next[k] = v
		}
	}
	next[name] = e
	c.ptr.Store(&next)
	return true
}

var errDecrypt = errors.New("decryption failed: ciphertext is not authentic")

func (s *secretKey) aead(iv []byte) (cipher.AEAD, error) {
	prf := hmac.New(sha256.New, s.key[:])
	prf.Write(iv)
	derived := prf.Sum(make([]byte, 0, prf.Size()))
	block, err := aes.NewCipher(derived)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (s *secretKey) encrypt(plaintext, associatedData []byte) ([]byte, error) {
	var random [randSize]byte
	if _, err := rand.Read(random[:]); err != nil {
		return nil, err
	}
	iv, nonce := random[:16], random[16:]
	aead, err := s.aead(iv)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(plaintext)+aead.Overhead()+randSize)
	out = aead.Seal(out, nonce, plaintext, associatedData)
	return append(out, random[:]...), nil
}

func (s *secretKey) decrypt(ciphertext, associatedData []byte) ([]byte, error) {
	if len(ciphertext) > 0 && (ciphertext[0] == 0x95 || ciphertext[0] == 0x7b) {
		return nil, errDecrypt // legacy msgp/JSON ciphertexts: not sent by the bench
	}
	if len(ciphertext) <= randSize {
		return nil, errDecrypt
	}
	n := len(ciphertext) - randSize
	iv, nonce := ciphertext[n:n+16], ciphertext[n+16:]
	aead, err := s.aead(iv)
	if err != nil {
		return nil, err
	}
	plaintext, err := aead.Open(ciphertext[:0], nonce, ciphertext[:n], associatedData)
	if err != nil {
		return nil, errDecrypt
	}
	return plaintext, nil
}

// ---------------------------------------------------------------- metrics

type atomicFloat struct{ bits atomic.Uint64 }

func (f *atomicFloat) add(v float64) {
	for {
		old := f.bits.Load()
		if f.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// counterVec: client_golang's label lookup (FNV-1a of the values, RLock'd map).
type counterVec struct {
	mu       sync.RWMutex
	counters map[uint64]*atomic.Uint64
}

func (c *counterVec) withLabelValues(value string) *atomic.Uint64 {
	h := fnv.New64a()
	h.Write([]byte(value))
	h.Write([]byte{0xff})
	key := h.Sum64()
	c.mu.RLock()
	counter, ok := c.counters[key]
	c.mu.RUnlock()
	if ok {
		return counter
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if counter, ok = c.counters[key]; !ok {
		counter = new(atomic.Uint64)
		c.counters[key] = counter
	}
	return counter
}

type histogram struct {
	bounds  []float64
	buckets []atomic.Uint64
	count   atomic.Uint64
	sum     atomicFloat
}

func (h *histogram) observe(v float64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.count.Add(1)
	if i < len(h.buckets) {
		h.buckets[i].Add(1)
	}
	h.sum.add(v)
	h.count.Add(1) // client_golang counts twice: the hot/cold index and the count
}

type modelMetrics struct {
	active                     atomicFloat
	succeeded, errored, failed counterVec
	responseTime               histogram
}

func newModelMetrics() *modelMetrics {
	bounds := []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 3, 5, 10}
	m := &modelMetrics{responseTime: histogram{bounds: bounds, buckets: make([]atomic.Uint64, len(bounds))}}
	for _, c := range []*counterVec{&m.succeeded, &m.errored, &m.failed} {
		c.counters = map[uint64]*atomic.Uint64{}
	}
	return m
}

type countResponseWriter struct {
	http.ResponseWriter
	status  int
	written bool
}

func (w *countResponseWriter) WriteHeader(code int) {
	if !w.written {
		w.status, w.written = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countResponseWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.status, w.written = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *countResponseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type latencyResponseWriter struct {
	http.ResponseWriter
	start time.Time
}

func (w *latencyResponseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// count and latency: internal/metric's middleware, as Count(Latency(route)).
func (m *modelMetrics) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.active.add(1)
		defer m.active.add(-1)
		cw := &countResponseWriter{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		switch code := cw.status; {
		case code >= 200 && code < 300:
			m.succeeded.withLabelValues(strconv.Itoa(code)).Add(1)
		case code >= 400 && code < 500:
			m.errored.withLabelValues(strconv.Itoa(code)).Add(1)
		case code >= 500:
			m.failed.withLabelValues(strconv.Itoa(code)).Add(1)
		}
	})
}

func (m *modelMetrics) latency(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lw := &latencyResponseWriter{ResponseWriter: w, start: time.Now()}
		next.ServeHTTP(lw, r)
		m.responseTime.observe(time.Since(lw.start).Seconds())
	})
}

// ---------------------------------------------------------------- routes

type modelState struct {
	admin string
	keys  cowCache
}

type apiResponse struct{ http.ResponseWriter }

func (r *apiResponse) Unwrap() http.ResponseWriter { return r.ResponseWriter }

type apiRequest struct {
	*http.Request
	Identity string
	Resource string
	Received time.Time
}

type modelRoute struct {
	method  string
	path    string
	state   *atomic.Pointer[modelState]
	handler func(*modelState, *apiResponse, *apiRequest)
}

func (ro *modelRoute) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resp := &apiResponse{ResponseWriter: w}
	received := time.Now()
	if r.Method != ro.method && !(r.Method == http.MethodPost && ro.method == http.MethodPut) {
		w.Header().Set("Accept", ro.method)
		modelError(resp, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	resource, ok := strings.CutPrefix(r.URL.Path, ro.path)
	if !ok {
		modelError(resp, http.StatusNotFound, "not found")
		return
	}
	if r.ContentLength < 0 || r.ContentLength > modelMaxBody {
		r.ContentLength = modelMaxBody
	}
	r.Body = http.MaxBytesReader(w, r.Body, r.ContentLength)
	_ = http.NewResponseController(resp).SetWriteDeadline(time.Now().Add(modelTimeout))

	state := ro.state.Load()
	identity, err := modelIdentity(r)
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		w.Write(forbiddenBody)
		return
	}
	if identity != state.admin {
		modelError(resp, http.StatusForbidden, "not authorized: insufficient permissions")
		return
	}
	req := &apiRequest{Request: r, Identity: identity, Resource: resource, Received: received}
	ro.handler(state, resp, req)
}

// modelIdentity is auth.go's identifyRequest: recomputed on every request.
func modelIdentity(r *http.Request) (string, error) {
	if r.TLS == nil {
		return "", errors.New("no TLS")
	}
	var cert *x509.Certificate
	for _, c := range r.TLS.PeerCertificates {
		if c.IsCA {
			continue
		}
		if cert != nil {
			return "", errors.New("ambiguous certificates")
		}
		cert = c
	}
	if cert == nil {
		return "", errors.New("no certificate")
	}
	h := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(h[:]), nil
}

func validName(name string) bool {
	const maxLength = 80
	if name == "" || len(name) > maxLength {
		return false
	}
	for _, r := range name {
		if r == utf8.RuneError || r == '/' || r == '\\' || r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

func modelError(w http.ResponseWriter, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(struct {
		Message string `json:"message"`
	}{message})
}

func replyWith(w http.ResponseWriter, code int, data any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(data)
}

func (s *modelState) lookup(w *apiResponse, req *apiRequest) (*keyVersion, bool) {
	if !validName(req.Resource) {
		modelError(w, http.StatusBadRequest, "invalid key name")
		return nil, false
	}
	entry, ok := s.keys.get(req.Resource)
	if !ok {
		modelError(w, http.StatusNotFound, "key does not exist")
		return nil, false
	}
	entry.Used.Store(true)
	key := entry.Key // Go KES returns the KeyVersion by value
	return &key, true
}

func modelCreate(s *modelState, w *apiResponse, req *apiRequest) {
	if !validName(req.Resource) {
		modelError(w, http.StatusBadRequest, "invalid key name")
		return
	}
	entry := &cacheEntry{Key: keyVersion{CreatedAt: time.Now().UTC(), CreatedBy: req.Identity}}
	rand.Read(entry.Key.Key.key[:])
	rand.Read(entry.Key.HMACKey[:])
	if !s.keys.add(req.Resource, entry) {
		modelError(w, http.StatusBadRequest, "key already exists")
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// keyRequest is what the key handlers share: the key, then the JSON body decoded into
// body (a pointer). Go KES's generate decodes only a non-empty body (optional).
func (s *modelState) keyRequest(w *apiResponse, req *apiRequest, body any, optional bool) (*keyVersion, bool) {
	key, ok := s.lookup(w, req)
	if !ok {
		return nil, false
	}
	if optional && req.ContentLength <= 0 {
		return key, true
	}
	if err := json.NewDecoder(req.Body).Decode(body); err != nil {
		modelError(w, http.StatusBadRequest, "invalid request body")
		return nil, false
	}
	return key, true
}

func modelGenerate(s *modelState, w *apiResponse, req *apiRequest) {
	var body struct {
		Context []byte `json:"context"`
	}
	key, ok := s.keyRequest(w, req, &body, true)
	if !ok {
		return
	}
	dataKey := make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		modelError(w, http.StatusInternalServerError, "internal error")
		return
	}
	ciphertext, err := key.Key.encrypt(dataKey, body.Context)
	if err != nil {
		modelError(w, http.StatusInternalServerError, "internal error")
		return
	}
	replyWith(w, http.StatusOK, struct {
		Plaintext  []byte `json:"plaintext"`
		Ciphertext []byte `json:"ciphertext"`
	}{dataKey, ciphertext})
}

func modelEncrypt(s *modelState, w *apiResponse, req *apiRequest) {
	var body struct {
		Plaintext []byte `json:"plaintext"`
		Context   []byte `json:"context"`
	}
	key, ok := s.keyRequest(w, req, &body, false)
	if !ok {
		return
	}
	ciphertext, err := key.Key.encrypt(body.Plaintext, body.Context)
	if err != nil {
		modelError(w, http.StatusInternalServerError, "internal error")
		return
	}
	replyWith(w, http.StatusOK, struct {
		Ciphertext []byte `json:"ciphertext"`
	}{ciphertext})
}

func modelDecrypt(s *modelState, w *apiResponse, req *apiRequest) {
	var body struct {
		Ciphertext []byte `json:"ciphertext"`
		Context    []byte `json:"context"`
	}
	key, ok := s.keyRequest(w, req, &body, false)
	if !ok {
		return
	}
	plaintext, err := key.Key.decrypt(body.Ciphertext, body.Context)
	if err != nil {
		modelError(w, http.StatusBadRequest, err.Error())
		return
	}
	replyWith(w, http.StatusOK, struct {
		Plaintext []byte `json:"plaintext"`
	}{plaintext})
}

// kesModelHandler is the server's handler in --work kes mode; admin is the identity
// (hex SHA-256 of the public key) allowed to call the key routes.
func kesModelHandler(admin string) http.Handler {
	state := new(atomic.Pointer[modelState])
	state.Store(&modelState{admin: admin})
	metrics := newModelMetrics()
	mux := http.NewServeMux()
	routes := []struct {
		path    string
		handler func(*modelState, *apiResponse, *apiRequest)
	}{
		{"/v1/key/create/", modelCreate},
		{"/v1/key/generate/", modelGenerate},
		{"/v1/key/encrypt/", modelEncrypt},
		{"/v1/key/decrypt/", modelDecrypt},
	}
	for _, route := range routes {
		r := &modelRoute{method: http.MethodPut, path: route.path, state: state, handler: route.handler}
		mux.Handle(route.path, metrics.count(metrics.latency(r)))
	}
	current := new(atomic.Pointer[http.ServeMux])
	current.Store(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		current.Load().ServeHTTP(w, r)
	})
}
