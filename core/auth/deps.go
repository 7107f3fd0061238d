package auth

// Dependencies pinned before the code that uses them lands.
import (
	_ "github.com/golang-jwt/jwt/v5"
	_ "golang.org/x/crypto/bcrypt"
)
