"""ddpayne.physics"""
