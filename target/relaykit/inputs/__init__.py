"""What comes in: settings (environment, dotenv, *_FILE secrets), the DMS files with file:line
origins, and the validation that turns text into model values (once)."""
