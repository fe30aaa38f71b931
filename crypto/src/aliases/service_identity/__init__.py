# Alias of socketiwa_crypto (AWS-LC), installed where the real package is absent: see socketiwa_crypto/_aliases.py
from socketiwa_crypto._aliases import install

install(__name__)
