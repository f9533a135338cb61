package store

import (
	"encoding/binary"
	"errors"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// A user's device list is kept packed beside the device records, so that
// the device-list checks of every Send (ListedIDs, and Enqueue's Expect)
// read one value instead of decoding each device's JSON record to find its
// mirror flag: lists user -> per device, ascending by id, the 4-byte id and
// a flag byte (listMirror for a mirror companion).
var bLists = []byte("lists")

const (
	listEntry  = 5
	listMirror = 1
)

// deviceList is one user's packed device list as stored.
type deviceList []byte

// ids returns the device ids, all of them or only the listed ones (no
// mirror companions).
func (l deviceList) ids(listedOnly bool) []uint32 {
	var ids []uint32
	for e := range slices.Chunk(l, listEntry) {
		if len(e) == listEntry && !(listedOnly && e[4]&listMirror != 0) {
			ids = append(ids, binary.BigEndian.Uint32(e))
		}
	}
	return ids
}

// with returns the list with device id added (or its flag replaced), in id
// order.
func (l deviceList) with(id uint32, mirror bool) deviceList {
	l = l.without(id)
	i := 0
	for i+listEntry <= len(l) && binary.BigEndian.Uint32(l[i:]) < id {
		i += listEntry
	}
	e := binary.BigEndian.AppendUint32(make([]byte, 0, listEntry), id)
	if mirror {
		e = append(e, listMirror)
	} else {
		e = append(e, 0)
	}
	return slices.Insert(slices.Clone(l), i, e...)
}

// without returns the list without device id.
func (l deviceList) without(id uint32) deviceList {
	for i := 0; i+listEntry <= len(l); i += listEntry {
		if binary.BigEndian.Uint32(l[i:]) == id {
			return slices.Concat(l[:i], l[i+listEntry:])
		}
	}
	return l
}

// deviceIDs lists a user's device ids.
func deviceIDs(tx *bolt.Tx, user string) []uint32 {
	return deviceList(tx.Bucket(bLists).Get([]byte(user))).ids(false)
}

// listedIDs is deviceIDs without mirror companions: the device list
// senders encrypt for.
func listedIDs(tx *bolt.Tx, user string) []uint32 {
	return deviceList(tx.Bucket(bLists).Get([]byte(user))).ids(true)
}

// listDevice adds a device to its user's list.
func listDevice(tx *bolt.Tx, a Address, mirror bool) error {
	b := tx.Bucket(bLists)
	return b.Put([]byte(a.User), deviceList(b.Get([]byte(a.User))).with(a.Device, mirror))
}

// unlistDevice takes a device off its user's list.
func unlistDevice(tx *bolt.Tx, a Address) error {
	b := tx.Bucket(bLists)
	l := deviceList(b.Get([]byte(a.User))).without(a.Device)
	if len(l) == 0 {
		return b.Delete([]byte(a.User))
	}
	return b.Put([]byte(a.User), l)
}

// buildLists fills the lists bucket of a store written before it existed,
// from the device records.
func buildLists(tx *bolt.Tx) error {
	return tx.Bucket(bDevices).ForEach(func(k, v []byte) error {
		d, err := decodeDevice(v)
		if err != nil {
			return err
		}
		if d.Address != parseDevKey(k) {
			return errors.New("store: device record under another device's key")
		}
		return listDevice(tx, d.Address, d.Mirror)
	})
}
