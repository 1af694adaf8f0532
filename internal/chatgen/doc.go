package chatgen

import (
	"strconv"
	"strings"
)

// makeKey formats id's document id ("r7-m1042") into the generator's key
// buffer and returns it.
func (g *Generator) makeKey(id int32) []byte {
	g.key = g.appendID(g.key[:0], id)
	return g.key
}

// appendID appends the document id of id: room id, "-m", message number.
func (g *Generator) appendID(dst []byte, id int32) []byte {
	dst = append(dst, g.rooms[g.docs[id].room].id...)
	dst = append(dst, "-m"...)
	return strconv.AppendInt(dst, int64(id)+1001, 10)
}

// mentions collects the senders named in a body, in order, without repeats.
type mentions struct {
	n   int
	ids [4]int32
}

func (m *mentions) add(s int32) {
	for _, x := range m.ids[:m.n] {
		if x == s {
			return
		}
	}
	if m.n < len(m.ids) {
		m.ids[m.n] = s
		m.n++
	}
}

// appendDoc appends the chat-message document of one version of id. The
// content depends only on the document's state, the edit number and the
// edit time, so any version can be regenerated.
func (g *Generator) appendDoc(dst []byte, id int32, st *docState, edits int, editedAt int64) []byte {
	s := &g.senders[st.sender]
	rm := &g.rooms[st.room]
	mode := st.mode
	r := newRNG(st.seed)
	ja := s.ja != (r.intn(8) == 0) // one message in eight is in the sender's other language
	var ms mentions

	dst = append(dst, `{"message_id":`...)
	dst = append(dst, '"')
	dst = g.appendID(dst, id)
	dst = append(dst, `","room_id":"`...)
	dst = append(dst, rm.id...)
	dst = append(dst, `","room_name":`...)
	dst = appendString(dst, rm.name, mode)
	dst = append(dst, `,"sender_id":"`...)
	dst = append(dst, s.id...)
	dst = append(dst, `","sender_name":`...)
	dst = appendString(dst, s.name, mode)

	dst = append(dst, `,"body":"`...)
	if ja {
		dst = g.appendFilled(dst, jaTemplates[r.intn(len(jaTemplates))], &r, ja, mode, &ms)
	} else {
		dst = g.appendFilled(dst, enTemplates[r.intn(len(enTemplates))], &r, ja, mode, &ms)
	}
	if edits > 0 {
		re := newRNG(mix(st.seed, uint64(edits)))
		if ja {
			dst = g.appendFilled(dst, jaEditSuffixes[re.intn(len(jaEditSuffixes))], &re, ja, mode, &ms)
		} else {
			dst = g.appendFilled(dst, enEditSuffixes[re.intn(len(enEditSuffixes))], &re, ja, mode, &ms)
		}
	}
	dst = append(dst, '"')

	if ja {
		dst = append(dst, `,"lang":"ja","created_at":`...)
	} else {
		dst = append(dst, `,"lang":"en","created_at":`...)
	}
	dst = appendTime(dst, st.created)
	dst = append(dst, `,"edited_at":`...)
	if edits == 0 {
		editedAt = 0
	}
	dst = appendTime(dst, editedAt)
	dst = append(dst, `,"edit_count":`...)
	dst = strconv.AppendInt(dst, int64(edits), 10)

	dst = append(dst, `,"attachments":[`...)
	ra := newRNG(mix(st.seed, 0xa77ac4))
	if ra.chance(0.2) {
		n := 1 + ra.intn(2)
		for i := range n {
			if i > 0 {
				dst = append(dst, ',')
			}
			a := &attachmentNames[ra.intn(len(attachmentNames))]
			dst = append(dst, `{"type":"`...)
			dst = append(dst, a.kind...)
			dst = append(dst, `","name":`...)
			dst = appendString(dst, a.name, mode)
			dst = append(dst, `,"mime":"`...)
			dst = append(dst, a.mime...)
			dst = append(dst, `","size":`...)
			dst = strconv.AppendInt(dst, 2048+ra.int63n(8<<20), 10)
			dst = append(dst, `,"url":"https://files.chat.example/`...)
			dst = append(dst, rm.id...)
			dst = append(dst, '/')
			dst = strconv.AppendUint(dst, ra.next()>>16, 36)
			dst = append(dst, `"}`...)
		}
	}
	dst = append(dst, `],"mentions":[`...)
	for i, m := range ms.ids[:ms.n] {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, g.senders[m].id...)
		dst = append(dst, '"')
	}
	dst = append(dst, `],"reactions":{`...)
	dst = appendReactions(dst, st.seed, int(st.reacts), mode)
	dst = append(dst, `},"reply_to":`...)
	if st.replyTo > 0 {
		dst = append(dst, '"')
		dst = g.appendID(dst, st.replyTo-1)
		dst = append(dst, '"')
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"client":"`...)
	dst = append(dst, clients[st.client]...)
	return append(dst, `"}`...)
}

// appendReactions appends the members of the reactions object after n
// reaction changes: each change adds one reaction, drawn from a stream
// seeded by the document.
func appendReactions(dst []byte, seed uint64, n int, mode escMode) []byte {
	if n == 0 {
		return dst
	}
	var counts [len(reactionEmoji)]int
	var order [len(reactionEmoji)]int
	kinds := 0
	r := newRNG(mix(seed, 0x5eac7))
	// People react with a favourite few emoji, and usually more than once.
	for range min(n, 64) {
		e := r.intn(len(reactionEmoji))
		if r.chance(0.5) {
			e %= 3
		}
		if counts[e] == 0 {
			order[kinds] = e
			kinds++
		}
		counts[e] += 1 + r.intn(3)
	}
	for i, e := range order[:kinds] {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, reactionEmoji[e], mode)
		dst = append(dst, ':')
		dst = strconv.AppendInt(dst, int64(counts[e]), 10)
	}
	return dst
}

// appendFilled appends the escaped text of tmpl with its {{slot}}s filled
// from r.
func (g *Generator) appendFilled(dst []byte, tmpl string, r *rng, ja bool, mode escMode, ms *mentions) []byte {
	for {
		i := strings.Index(tmpl, "{{")
		if i < 0 {
			return appendStringBody(dst, tmpl, mode)
		}
		dst = appendStringBody(dst, tmpl[:i], mode)
		j := strings.Index(tmpl[i:], "}}")
		slot := tmpl[i+2 : i+j]
		tmpl = tmpl[i+j+2:]
		dst = g.appendSlot(dst, slot, r, ja, mode, ms)
	}
}

func (g *Generator) appendSlot(dst []byte, slot string, r *rng, ja bool, mode escMode, ms *mentions) []byte {
	pick := func(ja bool, jaList, enList []string) string {
		if ja {
			return jaList[r.intn(len(jaList))]
		}
		return enList[r.intn(len(enList))]
	}
	switch slot {
	case "jname", "ename":
		s := int32(r.intn(len(g.senders)))
		ms.add(s)
		return appendStringBody(dst, g.senders[s].short, mode)
	case "n":
		return strconv.AppendInt(dst, int64(100+r.intn(9900)), 10)
	case "ver":
		dst = append(dst, '1', '.')
		dst = strconv.AppendInt(dst, int64(r.intn(24)), 10)
		dst = append(dst, '.')
		return strconv.AppendInt(dst, int64(r.intn(10)), 10)
	case "pct":
		return strconv.AppendInt(dst, int64(1+r.intn(40)), 10)
	case "emoji":
		return appendStringBody(dst, emoji[r.intn(len(emoji))], mode)
	case "time":
		return appendStringBody(dst, pick(ja, jaTimes[:], enTimes[:]), mode)
	case "item":
		return appendStringBody(dst, pick(ja, jaItems[:], enItems[:]), mode)
	case "place":
		return appendStringBody(dst, pick(ja, jaPlaces[:], enPlaces[:]), mode)
	case "login":
		return appendStringBody(dst, pick(ja, jaLogins[:], enLogins[:]), mode)
	case "quote":
		return appendStringBody(dst, jaQuotes[r.intn(len(jaQuotes))], mode)
	default:
		panic("chatgen: unknown template slot " + slot)
	}
}
