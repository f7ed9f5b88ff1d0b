package tokenizer

import "unicode/utf8"

// Piece returns the bytes token id stands for, as llama_token_to_piece with
// special=false: nothing for control and unknown tokens, the raw text for
// user-defined tokens, the decoded bytes otherwise. A piece need not be
// valid UTF-8 (byte tokens, partial characters). Out-of-range ids give nil.
// The returned slice must not be modified.
func (t *Tokenizer) Piece(id int) []byte {
	if id < 0 || id >= len(t.tokens) || t.attrs[id]&(attrUnknown|attrControl) != 0 {
		return nil
	}
	return t.pieceBuf[t.pieceOff[id]:t.pieceOff[id+1]:t.pieceOff[id+1]]
}

// buildPieces computes every token's piece once (llama.cpp's
// cache_token_to_piece, built with special=true) into one buffer.
func (t *Tokenizer) buildPieces() {
	t.pieceOff = make([]uint32, len(t.tokens)+1)
	buf := make([]byte, 0, len(t.tokens)*6)
	for id, text := range t.tokens {
		t.pieceOff[id] = uint32(len(buf))
		a := t.attrs[id]
		switch {
		case a&(attrUnknown|attrControl|attrUserDefined) != 0:
			buf = append(buf, text...)
		case a&attrNormal != 0:
			if t.kind == kindSPM {
				buf = appendUnescaped(buf, text)
			} else {
				buf = decodeGPT2(text, buf)
			}
		case a&attrByte != 0 && t.kind == kindSPM:
			if b, ok := parseByteToken(text); ok {
				buf = append(buf, b)
			}
		}
		// Unused and undefined tokens (and byte tokens of a BPE vocabulary)
		// have an empty piece, as in llama.cpp.
	}
	t.pieceOff[len(t.tokens)] = uint32(len(buf))
	t.pieceBuf = buf
}

// appendUnescaped appends text with every U+2581 replaced by a space.
func appendUnescaped(dst []byte, text string) []byte {
	for {
		i := indexString(text, spaceMarker)
		if i < 0 {
			return append(dst, text...)
		}
		dst = append(dst, text[:i]...)
		dst = append(dst, ' ')
		text = text[i+len(spaceMarker):]
	}
}

// parseByteToken reads the byte of an SPM byte token "<0xXX>". llama.cpp
// parses the two characters after "<0x" with strtol; tokens of another
// shape yield no byte here.
func parseByteToken(text string) (byte, bool) {
	if len(text) != 6 || text[:3] != "<0x" || text[5] != '>' {
		return 0, false
	}
	hi, ok1 := hexVal(text[3])
	lo, ok2 := hexVal(text[4])
	return hi<<4 | lo, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Decode converts ids back to text like llama_detokenize(remove_special,
// unparse_special=false): control and unknown tokens produce nothing; with
// removeSpecial a leading BOS and trailing EOS are dropped when the
// vocabulary adds them; the first piece loses one leading space when the
// vocabulary adds a dummy prefix (unless a BOS was dropped first, a quirk of
// llama.cpp at the reference commit); byte-level BPE vocabularies then get
// llama.cpp's clean-up of spaces before punctuation and contractions.
// The result is the raw bytes and may be invalid UTF-8.
func (t *Tokenizer) Decode(ids []int, removeSpecial bool) string {
	removeSpace := t.addSpacePrefix
	if removeSpecial && t.addBOS && len(ids) > 0 && ids[0] == t.bos {
		removeSpace = false
		ids = ids[1:]
	}
	if removeSpecial && t.addEOS && len(ids) > 0 && ids[len(ids)-1] == t.eos {
		ids = ids[:len(ids)-1]
	}
	var buf []byte
	for _, id := range ids {
		p := t.Piece(id)
		if removeSpace && len(p) > 0 && p[0] == ' ' {
			p = p[1:]
		}
		removeSpace = false
		buf = append(buf, p...)
	}
	if t.cleanSpaces {
		buf = cleanSpaces(buf)
	}
	return string(buf)
}

// cleanSpaces applies llama.cpp's clean_up_tokenization_spaces passes in
// place: drop a space before ? ! . , ; turn " ' " into "'"; drop the space
// before 's 'm 're 've (but not before 't 'd 'll). Each pass reads the
// output of the previous one, and the second pass blanks the space it
// swallows so that it no longer counts as a space for the next character.
func cleanSpaces(text []byte) []byte {
	n := len(text)
	if n == 0 {
		return text
	}
	// Pass 1.
	total := 1
	for i := 1; i < n; i++ {
		x := text[i]
		if text[i-1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',') {
			total--
		}
		text[total] = x
		total++
	}
	// Pass 2.
	n, total = total, 1
	for i := 1; i < n; i++ {
		x := text[i]
		if x == '\'' && i+1 < n && text[i-1] == ' ' && text[i+1] == ' ' {
			total--
			i++
			text[i] = 0
		}
		text[total] = x
		total++
	}
	// Pass 3.
	n, total = total, 1
	for i := 1; i < n; i++ {
		x := text[i]
		if text[i-1] == ' ' && x == '\'' && i+1 < n {
			switch x1 := text[i+1]; {
			case x1 == 's' || x1 == 'm':
				total--
			case x1 == 't' || x1 == 'd':
			case i+2 < n && ((x1 == 'r' || x1 == 'v') && text[i+2] == 'e'):
				total--
			}
		}
		text[total] = x
		total++
	}
	return text[:total]
}

// StreamDecoder turns ids into text incrementally, for printing generated
// tokens as they come. The concatenation of everything Next and Flush
// return equals Decode(ids, false) of all ids fed. Output is held back while
// it ends in an incomplete UTF-8 sequence (a character split across byte
// tokens) or while llama.cpp's space clean-up could still change it; bytes
// that can never form valid UTF-8 are passed through unchanged.
//
// Like Decode, the first id fed is subject to the leading-space rule. To
// continue a prompt, feed the prompt ids first and discard their output:
// the decoder then also knows the preceding context.
type StreamDecoder struct {
	t       *Tokenizer
	started bool
	clean   spaceCleaner
	pending []byte
}

// NewStreamDecoder returns a decoder with no history.
func (t *Tokenizer) NewStreamDecoder() *StreamDecoder {
	return &StreamDecoder{t: t}
}

// Next feeds one id and returns the text that became final.
func (d *StreamDecoder) Next(id int) string {
	p := d.t.Piece(id)
	if !d.started {
		d.started = true
		if d.t.addSpacePrefix && len(p) > 0 && p[0] == ' ' {
			p = p[1:]
		}
	}
	if d.t.cleanSpaces {
		for _, b := range p {
			d.pending = d.clean.put(b, d.pending)
		}
	} else {
		d.pending = append(d.pending, p...)
	}
	return d.take(false)
}

// Flush returns everything still held back and resets the decoder.
func (d *StreamDecoder) Flush() string {
	if d.t.cleanSpaces {
		d.pending = d.clean.flush(d.pending)
	}
	s := d.take(true)
	*d = StreamDecoder{t: d.t}
	return s
}

// take removes and returns the final part of pending: all of it, or all but
// a trailing incomplete UTF-8 sequence.
func (d *StreamDecoder) take(all bool) string {
	n := len(d.pending)
	if !all {
		n = completeUTF8Prefix(d.pending)
	}
	s := string(d.pending[:n])
	d.pending = append(d.pending[:0], d.pending[n:]...)
	return s
}

// completeUTF8Prefix returns the length of p without a trailing sequence
// that is a proper prefix of a valid UTF-8 encoding.
func completeUTF8Prefix(p []byte) int {
	for k := len(p) - 1; k >= 0 && k >= len(p)-utf8.UTFMax+1; k-- {
		if utf8.RuneStart(p[k]) {
			if !utf8.FullRune(p[k:]) {
				return k
			}
			break
		}
	}
	return len(p)
}

// spaceCleaner is cleanSpaces as a chain of three streaming stages, each
// holding back the few bytes whose fate depends on what follows.
type spaceCleaner struct {
	punct struct{ held bool }       // pass 1: a held space
	quote struct{ state uint8 }     // pass 2: 1 = " ", 2 = " '"
	contr struct{ state, x1 uint8 } // pass 3: 1 = " ", 2 = " '", 3 = " '" + x1
	tmp1  []byte                    // reusable stage buffers
	tmp2  []byte
}

func (c *spaceCleaner) put(b byte, out []byte) []byte {
	c.tmp1 = c.putPunct(b, c.tmp1[:0])
	c.tmp2 = c.tmp2[:0]
	for _, x := range c.tmp1 {
		c.tmp2 = c.putQuote(x, c.tmp2)
	}
	for _, x := range c.tmp2 {
		out = c.putContr(x, out)
	}
	return out
}

func (c *spaceCleaner) flush(out []byte) []byte {
	c.tmp1 = c.tmp1[:0]
	if c.punct.held {
		c.tmp1 = append(c.tmp1, ' ')
	}
	c.tmp2 = c.tmp2[:0]
	for _, x := range c.tmp1 {
		c.tmp2 = c.putQuote(x, c.tmp2)
	}
	switch c.quote.state {
	case 1:
		c.tmp2 = append(c.tmp2, ' ')
	case 2:
		c.tmp2 = append(c.tmp2, ' ', '\'')
	}
	for _, x := range c.tmp2 {
		out = c.putContr(x, out)
	}
	switch c.contr.state {
	case 1:
		out = append(out, ' ')
	case 2:
		out = append(out, ' ', '\'')
	case 3:
		out = append(out, ' ', '\'', c.contr.x1)
	}
	*c = spaceCleaner{tmp1: c.tmp1[:0], tmp2: c.tmp2[:0]}
	return out
}

// putPunct: a space is dropped when followed by ? ! . or ,.
func (c *spaceCleaner) putPunct(b byte, out []byte) []byte {
	if c.punct.held {
		c.punct.held = false
		if b != '?' && b != '!' && b != '.' && b != ',' {
			out = append(out, ' ')
		}
	}
	if b == ' ' {
		c.punct.held = true
		return out
	}
	return append(out, b)
}

// putQuote: " ' " becomes "'"; the swallowed trailing space cannot start
// another match.
func (c *spaceCleaner) putQuote(b byte, out []byte) []byte {
	switch c.quote.state {
	case 1:
		if b == '\'' {
			c.quote.state = 2
			return out
		}
		out = append(out, ' ')
	case 2:
		c.quote.state = 0
		if b == ' ' {
			return append(out, '\'')
		}
		out = append(out, ' ', '\'')
	}
	c.quote.state = 0
	if b == ' ' {
		c.quote.state = 1
		return out
	}
	return append(out, b)
}

// putContr: the space before 's 'm 're 've is dropped.
func (c *spaceCleaner) putContr(b byte, out []byte) []byte {
	switch c.contr.state {
	case 1:
		if b == '\'' {
			c.contr.state = 2
			return out
		}
		out = append(out, ' ')
	case 2:
		switch b {
		case 's', 'm':
			c.contr.state = 0
			return append(out, '\'', b)
		case 'r', 'v':
			c.contr.state, c.contr.x1 = 3, b
			return out
		}
		out = append(out, ' ', '\'')
	case 3:
		if b == 'e' {
			c.contr.state = 0
			return append(out, '\'', c.contr.x1, b)
		}
		out = append(out, ' ', '\'', c.contr.x1)
	}
	c.contr.state = 0
	if b == ' ' {
		c.contr.state = 1
		return out
	}
	return append(out, b)
}
