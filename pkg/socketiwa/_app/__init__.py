"""The socketiwa CLI's machinery: app projects (project), Chromium and IWA installs (chromium),
running an app and following its output (launch). Not part of socketiwa's networking API."""
