"""ddpayne.galaxy"""
