// A reference chat server for the benchmark: Go with gorilla/websocket,
// shaped like gorilla's own chat example (a hub goroutine per room, a read
// and a write goroutine per connection), speaking the project's protocol:
// GET /ws/chat/<room>/ joins <room>; every {"message": text} a member sends
// goes to every member of the room, the sender included, in the one order
// the room's hub sees them.
//
// Differences from the example, each stated in the report: rooms (one hub
// per room, created on first join), JSON frames one per WebSocket message
// (the example joins queued lines into one frame), and a per-member queue of
// -queue frames (the example's 256 fills at the sweep's rates, and the
// example then drops the member: here too, with a close frame, as our
// servers close a slow member with 1013).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// Time allowed to write a message to the peer.
	writeWait = 10 * time.Second
	// The most bytes a client message may hold (as our servers).
	maxMessageSize = 64 * 1024
)

var (
	addr  = flag.String("addr", "127.0.0.1:0", "address to listen on")
	queue = flag.Int("queue", 4096, "frames queued per member before it is dropped")
)

var roomPath = regexp.MustCompile(`^/ws/chat/([A-Za-z0-9_]{1,94})/$`)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	// The load generator sends no Origin; a browser on another host
	// would be refused by our servers, and is here too.
	CheckOrigin: func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		return origin == "" || origin == "http://"+r.Host
	},
}

// Hub is one room: its members and the messages to send them, in order.
type Hub struct {
	clients    map[*Client]bool
	broadcast  chan []byte
	register   chan *Client
	unregister chan *Client
}

func newHub() *Hub {
	return &Hub{
		clients:    make(map[*Client]bool),
		broadcast:  make(chan []byte, 256),
		register:   make(chan *Client),
		unregister: make(chan *Client),
	}
}

func (h *Hub) run() {
	for {
		select {
		case c := <-h.register:
			h.clients[c] = true
		case c := <-h.unregister:
			if _, ok := h.clients[c]; ok {
				delete(h.clients, c)
				close(c.send)
			}
		case message := <-h.broadcast:
			for c := range h.clients {
				select {
				case c.send <- message:
				default:
					// Its queue is full: drop the member (it gets a close).
					close(c.send)
					delete(h.clients, c)
				}
			}
		}
	}
}

// Rooms creates each room's hub on first use.
type Rooms struct {
	mu   sync.Mutex
	hubs map[string]*Hub
}

func (r *Rooms) get(name string) *Hub {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, ok := r.hubs[name]
	if !ok {
		h = newHub()
		r.hubs[name] = h
		go h.run()
	}
	return h
}

// Client is one connection.
type Client struct {
	hub  *Hub
	conn *websocket.Conn
	send chan []byte
}

type incoming struct {
	Message *string `json:"message"`
}

type outgoing struct {
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

func (c *Client) readPump() {
	defer func() {
		c.hub.unregister <- c
		c.conn.Close()
	}()
	c.conn.SetReadLimit(maxMessageSize)
	for {
		kind, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		var in incoming
		if kind != websocket.TextMessage || json.Unmarshal(data, &in) != nil || in.Message == nil {
			reply, _ := json.Marshal(outgoing{Error: "expected a JSON object with a string field \"message\""})
			// Through the hub's order is not needed for a reply to one
			// member; through its queue keeps one writer per connection.
			select {
			case c.send <- reply:
			default:
			}
			continue
		}
		frame, _ := json.Marshal(outgoing{Message: *in.Message})
		c.hub.broadcast <- frame
	}
}

func (c *Client) writePump() {
	defer c.conn.Close()
	for message := range c.send {
		c.conn.SetWriteDeadline(time.Now().Add(writeWait))
		if err := c.conn.WriteMessage(websocket.TextMessage, message); err != nil {
			return
		}
	}
	c.conn.SetWriteDeadline(time.Now().Add(writeWait))
	c.conn.WriteMessage(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseTryAgainLater, "too slow: outbound queue full"))
}

func main() {
	flag.Parse()
	rooms := &Rooms{hubs: make(map[string]*Hub)}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		m := roomPath.FindStringSubmatch(r.URL.Path)
		if m == nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		// In the room before the 101 response, as the protocol asks (and
		// as our servers do): a message sent by anyone once this client's
		// handshake has completed reaches it. Gorilla's example registers
		// after the upgrade, which lets a message sent meanwhile miss the
		// new member; the admission check caught it. Frames queued before
		// the upgrade wait in the client's queue for its write goroutine.
		c := &Client{hub: rooms.get(m[1]), send: make(chan []byte, *queue)}
		c.hub.register <- c
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			c.hub.unregister <- c
			return
		}
		c.conn = conn
		go c.writePump()
		go c.readPump()
	})
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// The line the benchmark waits for, as our servers print it.
	fmt.Printf("listening on http://%s\n", listener.Addr())
	os.Stdout.Sync()
	log.Fatal(http.Serve(listener, mux))
}
