package e2e

import (
	"fmt"

	"github.com/linksim/linksim/sim/wire/pb"
)

// keyIndexSigPrefix starts what an account signs over its device list, so
// that this signature can pass for no device identity signature.
var keyIndexSigPrefix = []byte{0x06, 0x02}

// SignKeyIndexList is the phone's statement of its account's companions:
//
//	account_signature = Sign(0x06 0x02 || details), by the phone's identity key
//
// with details the serialized list.
func SignKeyIndexList(phone *Store, l *pb.KeyIndexList) (*pb.SignedKeyIndexList, error) {
	details, err := pb.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("e2e: sign key index list: %w", err)
	}
	return &pb.SignedKeyIndexList{Details: details, AccountSignature: phone.Sign(concat(keyIndexSigPrefix, details))}, nil
}

// OpenKeyIndexList checks that s is signed by accountIdentityKey
// (ErrBadSignature) and decodes it.
func OpenKeyIndexList(s *pb.SignedKeyIndexList, accountIdentityKey []byte) (*pb.KeyIndexList, error) {
	if s == nil {
		return nil, fmt.Errorf("e2e: open key index list: %w", ErrNoKeyIndexList)
	}
	if !Verify(accountIdentityKey, concat(keyIndexSigPrefix, s.GetDetails()), s.GetAccountSignature()) {
		return nil, fmt.Errorf("e2e: open key index list: %w", ErrBadSignature)
	}
	var l pb.KeyIndexList
	if err := pb.Unmarshal(s.GetDetails(), &l); err != nil {
		return nil, fmt.Errorf("e2e: open key index list: %w", err)
	}
	return &l, nil
}
